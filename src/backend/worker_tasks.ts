/**
 * Tasks a pool worker can run, by name. Each worker initialises its own backend once (wasm: its
 * own module instance and memory), then serves tasks.
 */
import { workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, parseBackendChoice } from './index.js';
import { gradStep, type GradStepInput, type GradStepOutput } from '../train/data_parallel.js';
import type { Params } from '../nn/params.js';
import { renderSeedsU8 } from '../../datasets/toyfaces/cache.js';

export interface ConvForwardInput {
  /** NHWC images, flattened. */
  images: Float32Array;
  shape: [number, number, number, number];
  /** Filters per layer, [kh, kw, cin, cout] each, flattened. */
  filters: Array<{ values: Float32Array; shape: [number, number, number, number] }>;
}

interface Tasks {
  /** A small strided conv stack + global mean pool: the shape of a feature extractor. */
  convForward: { input: ConvForwardInput; output: { features: Float32Array; shape: number[] } };
  backendInfo: { input: Record<string, never>; output: { backend: string; threadId: number } };
  /** toyfaces images for these seeds, uint8 NHWC. */
  renderFaces: { input: { seeds: number[]; size: number }; output: Uint8Array };
  /** Gradients of a registered model's loss on one share of a batch (data-parallel training). */
  gradStep: { input: GradStepInput; output: GradStepOutput };
}

export type TaskName = keyof Tasks;
export type TaskInput<N extends TaskName> = Tasks[N]['input'];
export type TaskOutput<N extends TaskName> = Tasks[N]['output'];

// Lazy: this module is also imported by the main thread (tests, in-process fallbacks).
let ready: Promise<unknown> | null = null;
const init = () => (ready ??= initBackend(parseBackendChoice((workerData as { backend?: string } | null)?.backend, 'SDD_BACKEND')));

export function convForward(input: ConvForwardInput): { features: Float32Array; shape: number[] } {
  const out = tf.tidy(() => {
    let x: tf.Tensor4D = tf.tensor4d(input.images, input.shape);
    for (const f of input.filters) {
      x = tf.relu(tf.conv2d(x, tf.tensor4d(f.values, f.shape), 2, 'same'));
    }
    return tf.mean(x, [1, 2]);
  });
  const features = out.dataSync() as Float32Array;
  const shape = out.shape;
  out.dispose();
  return { features, shape };
}

/** Per-worker model parameters, reused across steps (weights are overwritten each step). */
const modelCache = new Map<string, Params>();

const handlers: { [N in TaskName]: (input: TaskInput<N>) => TaskOutput<N> } = {
  convForward,
  gradStep: (input) => gradStep(input, modelCache),
  renderFaces: ({ seeds, size }) => renderSeedsU8(seeds, size),
  backendInfo: () => ({ backend: tf.getBackend(), threadId: (globalThis as { threadId?: number }).threadId ?? process.pid }),
};

export default async function run({ name, input }: { name: TaskName; input: unknown }): Promise<unknown> {
  await init();
  const h = handlers[name] as ((i: unknown) => unknown) | undefined;
  if (!h) throw new Error(`unknown worker task '${name}'`);
  return h(input);
}
