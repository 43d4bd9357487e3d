/**
 * Wall-clock timing for Eq. 13–15: warm-up excluded, and the clock stops only after the backend
 * has finished (the result is read back), so asynchronous backends (GPU) are timed honestly.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { median } from 'simple-statistics';

/** Median seconds of `reps` timed calls after one untimed warm-up. */
export async function timeTensorFn(fn: () => tf.Tensor, reps = 3): Promise<number> {
  const warm = fn();
  await warm.data();
  warm.dispose();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const out = fn();
    await out.data();
    times.push((performance.now() - t0) / 1000);
    out.dispose();
  }
  return median(times);
}

/** Seconds of an async section (training): the caller makes sure its work is read back. */
export async function timeSection<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, seconds: (performance.now() - t0) / 1000 };
}
