/** Shared by the benchmarks: timing with medians, and result files that name machine and backend. */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { median } from 'simple-statistics';
import {
  activeBackend,
  BackendChoiceError,
  initBackend,
  shutdownBackend,
  type BackendInfo,
} from '../src/backend/index.js';
import { isSoftware } from '../src/backend/webgpu.js';
import { modelLoss } from '../src/nn/models.js';
import type { UNetConfig } from '../src/nn/unet.js';
import { Params } from '../src/nn/params.js';
import { createAdam } from '../src/nn/adam.js';
import { gitInfo, machineInfo, PROJECT_ROOT } from '../src/util/env.js';
import { writeJsonAtomic } from '../src/util/atomic.js';
import { Rng } from '../src/util/rng.js';

export const RESULTS_DIR = join(PROJECT_ROOT, 'bench', 'results');

/** Runs `fn` warmup + n times; returns per-run milliseconds (warm-up excluded). */
export async function timeIt(fn: () => unknown | Promise<unknown>, n: number, warmup = 2): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

/**
 * The output of `f` and its median ms: `repeats` timed runs after one warm-up, then the run whose
 * output is returned. With repeats 0 only that run is timed (a forward the cpu backend takes
 * minutes for).
 */
export async function timedOutput(
  f: () => tf.Tensor,
  repeats: number,
): Promise<{ values: ArrayLike<number>; ms: number }> {
  const once = async () => {
    const y = f();
    const values = await y.data();
    y.dispose();
    return values;
  };
  const times = repeats > 0 ? await timeIt(once, repeats, 1) : [];
  const t0 = performance.now();
  const values = await once();
  if (repeats === 0) times.push(performance.now() - t0);
  return { values, ms: med(times) };
}

export function med(xs: number[]): number {
  return median(xs);
}

/** bench/results/<name>.json, written atomically (a killed bench never leaves half a file). */
export function writeResult(name: string, data: Record<string, unknown>): string {
  const path = join(RESULTS_DIR, `${name}.json`);
  const record = {
    bench: name,
    at: new Date().toISOString(),
    machine: machineInfo(),
    backend: activeBackend(),
    git: gitInfo(),
    ...data,
  };
  writeJsonAtomic(path, record);
  return path;
}

/**
 * The bench U-Net (src/nn/unet.ts) as every U-Net benchmark trains it: this config, MSE against a
 * random target, parameters from `new Params(0)`. bench/unet_torch.py builds the same network.
 */
export const UNET_BENCH_CFG: UNetConfig = { channels: [32, 64, 128], groups: 8, outChannels: 3 };

export function unetBenchLoss(p: Params, x: tf.Tensor4D, y: tf.Tensor): tf.Scalar {
  return modelLoss('unet', p, x, y, UNET_BENCH_CFG);
}

/**
 * A random input/target pair [batch, size, size, 3], drawn on the host (no synchronous device
 * read, so it works on every backend, webgpu included).
 */
export function unetBenchData(
  batch: number,
  size: number,
  seed = 1,
): { x: Float32Array; y: Float32Array; shape: [number, number, number, number] } {
  const rng = new Rng(seed);
  const n = batch * size * size * 3;
  return {
    x: Float32Array.from({ length: n }, () => rng.normal()),
    y: Float32Array.from({ length: n }, () => rng.normal()),
    shape: [batch, size, size, 3],
  };
}

/**
 * The bench U-Net's train step on the active backend at batch × size² (forward, backward,
 * createAdam's step, then an awaited read of the loss, so the step's queued device work is done),
 * handed to `run` with the parameter count; parameters, optimizer and data are freed after.
 */
export async function withUnetTrainStep<T>(
  batch: number,
  size: number,
  run: (step: () => Promise<void>, params: number) => Promise<T>,
): Promise<T> {
  const p = new Params(0);
  const d = unetBenchData(batch, size);
  const x = tf.tensor4d(d.x, d.shape);
  const y = tf.tensor4d(d.y, d.shape);
  const opt = createAdam({ lr: 1e-4 });
  tf.tidy(() => void unetBenchLoss(p, x, y)); // creates the parameters
  try {
    return await run(async () => {
      const { value, grads } = tf.variableGrads(() => unetBenchLoss(p, x, y), p.list());
      await opt.apply(p.list(), grads);
      await value.data(); // after the optimizer's ops in the queue: the whole step is done
      tf.dispose([value, grads]);
    }, p.count());
  } finally {
    opt.dispose();
    p.dispose();
    tf.dispose([x, y]);
  }
}

/**
 * The webgpu backend for a GPU benchmark, or null (after saying why) when there is no adapter, or
 * only a software one and `allowSoftware` is off.
 */
export async function webgpuForBench(
  bench: string,
  allowSoftware: boolean,
): Promise<{ info: BackendInfo; software: boolean } | null> {
  let info: BackendInfo;
  try {
    info = await initBackend('webgpu');
  } catch (e) {
    if (!(e instanceof BackendChoiceError)) throw e;
    console.log(`${bench} skipped: ${e.message}`);
    return null;
  }
  const software = isSoftware(info.adapter!);
  if (software && !allowSoftware) {
    const a = info.adapter!;
    console.log(
      `${bench} skipped: the WebGPU adapter is software (${`${a.vendor} ${a.device} ${a.description}`.replace(/\s+/g, ' ').trim()}); its numbers would be meaningless.`,
    );
    console.log('(--allow-software or SDD_BENCH_ALLOW_SOFTWARE=1 runs the --smoke sizes on it, to test the script)');
    shutdownBackend();
    return null;
  }
  return { info, software };
}

export function argValue(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
