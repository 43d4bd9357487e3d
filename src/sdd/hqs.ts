/**
 * Hybrid Quality Score (Eq. 8–12) and timestep selection. For each scanned t, over K images:
 *   d_t = ∂/∂x of the guidance at the generator's output pixels x,
 *   N_t = mean |d_t|                                    (gradient strength)
 *   H_t = entropy of softmax over H·W of mean_c |d_t|   (how spread out the gradient is)
 * averaged over images, min–max normalised across the scanned t, and combined as
 *   paper: HQS_t = N̄_t − H̄_t ∈ [−1, 1];   code: (N̄_t + 1 − H̄_t)/2 ∈ [0, 1] (same ordering).
 * Selection: S = {t : HQS_t > ξ} ("threshold"), S = argmax ("largest"), or t uniform over a
 * range ("random"). Training then draws t uniformly from S at every iteration.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../util/rng.js';
import type { World } from '../world/types.js';
import { guidanceCondition, sdsInjection, type GuidancePrompt, type GuidanceSettings } from './guidance.js';

export type HqsForm = 'paper' | 'code';

/** N and H of one gradient image d [h, w, c] (row-major HWC). */
export function gradientStats(d: ArrayLike<number>, h: number, w: number, c: number): { N: number; H: number } {
  let sum = 0;
  const m = new Float64Array(h * w);
  for (let p = 0; p < h * w; p++) {
    let s = 0;
    for (let k = 0; k < c; k++) s += Math.abs(d[p * c + k]);
    sum += s;
    m[p] = s / c;
  }
  let max = -Infinity;
  for (const v of m) max = Math.max(max, v);
  let z = 0;
  for (const v of m) z += Math.exp(v - max);
  let H = 0;
  for (const v of m) {
    const q = Math.exp(v - max) / z;
    if (q > 0) H -= q * Math.log(q);
  }
  return { N: sum / (h * w * c), H };
}

/** Min–max normalisation to [0, 1] over the scanned t (Eq. 11–12). */
export function minMax(v: number[]): number[] {
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  // A flat curve carries no ranking: every t normalises to 0 rather than dividing by zero.
  return v.map((x) => (hi > lo ? (x - lo) / (hi - lo) : 0));
}

/** HQS per scanned t from the image-averaged N̄_t and H̄_t. */
export function hqsCurve(N: number[], H: number[], form: HqsForm): number[] {
  const n = minMax(N);
  const h = minMax(H);
  return n.map((x, i) => (form === 'paper' ? x - h[i] : (x + 1 - h[i]) / 2));
}

export type SelectionStrategy = 'random' | 'threshold' | 'largest';

export interface SelectionSettings {
  strategy: SelectionStrategy;
  /** Threshold ξ, in the same form as the curve. */
  xi?: number;
  /** Range for "random" (inclusive). */
  range?: [number, number];
}

export interface Selection {
  strategy: SelectionStrategy;
  timesteps: number[];
  /** Mean HQS over S (interpolated curve values for "random": the curve's mean over its range). */
  mean_hqs: number | null;
  size: number;
}

export function selectTimesteps(timesteps: number[], hqs: number[], s: SelectionSettings): Selection {
  if (s.strategy === 'random') {
    const [lo, hi] = s.range ?? [20, 980];
    const ts = Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
    const inside = hqs.filter((_, i) => timesteps[i] >= lo && timesteps[i] <= hi);
    return { strategy: 'random', timesteps: ts, mean_hqs: inside.length ? mean(inside) : null, size: ts.length };
  }
  if (s.strategy === 'largest') {
    const i = hqs.indexOf(Math.max(...hqs));
    return { strategy: 'largest', timesteps: [timesteps[i]], mean_hqs: hqs[i], size: 1 };
  }
  if (s.xi === undefined) throw new RangeError('threshold selection needs xi');
  const keep = timesteps.filter((_, i) => hqs[i] > s.xi!);
  if (keep.length === 0) throw new RangeError(`no scanned timestep has HQS > ξ = ${s.xi} (max ${Math.max(...hqs).toFixed(3)})`);
  return { strategy: 'threshold', timesteps: keep, mean_hqs: mean(keep.map((t) => hqs[timesteps.indexOf(t)])), size: keep.length };
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

export interface HqsScan {
  timesteps: number[];
  N: number[];
  H: number[];
  hqs: number[];
  form: HqsForm;
  images: number;
}

/**
 * Scans `timesteps` on images x (the generator's output for the K latents, made by the caller:
 * the code uses G(w + 0.1·M(w)) with an untrained mapper). One noise draw per (image, t).
 */
export function hqsScan(world: World, images: tf.Tensor4D, prompt: GuidancePrompt, timesteps: number[], guidance: GuidanceSettings, form: HqsForm, rng: Rng, onStep?: (i: number) => void): HqsScan {
  const [k, h, w, c] = images.shape;
  const cond = guidanceCondition(world.diffusion, prompt, k);
  const N: number[] = [];
  const H: number[] = [];
  try {
    timesteps.forEach((t, i) => {
      const noise = tf.randomNormal([k, ...world.diffusion.latentShape], 0, 1, 'float32', rng.int(2 ** 31)) as tf.Tensor4D;
      const d = tf.grad((x: tf.Tensor) => sdsInjection(world.diffusion, t, cond, noise, guidance)(world.diffusion.encode(x as tf.Tensor4D)))(images);
      const values = d.dataSync();
      tf.dispose([d, noise]);
      let n = 0;
      let e = 0;
      for (let j = 0; j < k; j++) {
        const st = gradientStats(values.subarray(j * h * w * c, (j + 1) * h * w * c), h, w, c);
        n += st.N / k;
        e += st.H / k;
      }
      N.push(n);
      H.push(e);
      onStep?.(i + 1);
    });
  } finally {
    tf.dispose([cond.context, cond.mask]);
  }
  return { timesteps, N, H, hqs: hqsCurve(N, H, form), form, images: k };
}

/** 50, 100, …, 950 (the code's default scan; 19 timesteps). */
export function scanTimesteps(from = 50, to = 950, stride = 50): number[] {
  return Array.from({ length: Math.floor((to - from) / stride) + 1 }, (_, i) => from + i * stride);
}
