/**
 * What a pool worker runs: the backend's own tasks (convForward, backendInfo) plus whatever the
 * pool's task modules registered (task_registry.ts). Each worker initialises its own backend once
 * (wasm: its own module instance and memory), then serves tasks.
 */
import { workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, parseBackendChoice } from './index.js';
import { registeredWorkerTasks, registerWorkerTask, workerTaskHandler } from './task_registry.js';

export interface ConvForwardInput {
  /** NHWC images, flattened. */
  images: Float32Array;
  shape: [number, number, number, number];
  /** Filters per layer, [kh, kw, cin, cout] each, flattened. */
  filters: Array<{ values: Float32Array; shape: [number, number, number, number] }>;
}

declare module './task_registry.js' {
  interface WorkerTasks {
    /** A small strided conv stack + global mean pool: the shape of a feature extractor. */
    convForward: { input: ConvForwardInput; output: { features: Float32Array; shape: number[] } };
    backendInfo: { input: Record<string, never>; output: { backend: string; threadId: number } };
  }
}

// Lazy: this module is also imported by the main thread (tests, in-process fallbacks).
let ready: Promise<unknown> | null = null;
const init = () =>
  (ready ??= initBackend(parseBackendChoice((workerData as { backend?: string } | null)?.backend, 'SDD_BACKEND')));

export async function convForward(input: ConvForwardInput): Promise<{ features: Float32Array; shape: number[] }> {
  const out = tf.tidy(() => {
    let x: tf.Tensor4D = tf.tensor4d(input.images, input.shape);
    for (const f of input.filters) {
      x = tf.relu(tf.conv2d(x, tf.tensor4d(f.values, f.shape), 2, 'same'));
    }
    return tf.mean(x, [1, 2]);
  });
  try {
    return { features: (await out.data()) as Float32Array, shape: out.shape };
  } finally {
    out.dispose();
  }
}

registerWorkerTask('convForward', convForward);
registerWorkerTask('backendInfo', () => ({
  backend: tf.getBackend(),
  threadId: (globalThis as { threadId?: number }).threadId ?? process.pid,
}));

/** Set by worker_entry.mjs when a task module failed to load: every task then fails with it. */
let loadError: Error | null = null;
export function taskModulesFailed(e: Error): void {
  loadError = e;
}

export default async function run({ name, input }: { name: string; input: unknown }): Promise<unknown> {
  if (loadError) throw loadError;
  await init();
  const h = workerTaskHandler(name);
  if (!h) {
    const modules = (workerData as { taskModules?: string[] } | null)?.taskModules ?? [];
    throw new Error(
      `unknown worker task '${name}' (this worker has: ${registeredWorkerTasks().join(', ')}; ` +
        `task modules: ${modules.length ? modules.join(', ') : 'none'}). Pass the module that registers it in the WorkerPool's taskModules.`,
    );
  }
  return h(input);
}
