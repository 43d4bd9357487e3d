/**
 * Hybrid Quality Score (Eq. 8–12) and timestep selection. For each scanned t and each of K images:
 *   d_t = ∂/∂x of the guidance at the generator's output pixels x,
 *   N_t = mean |d_t|                       (gradient strength; Eq. 10's sum up to a constant)
 *   H_t = entropy of a softmax of |d_t|    (how spread out the gradient is)
 * Two forms, both kept per image by the scan so either can be read from one (cached) scan:
 *   released — the authors' code: softmax over the H·W positions of the channel mean of |d_t|;
 *              N and H averaged over images first, then min–max normalised across the scanned t.
 *   eq11-12  — the paper read literally: softmax over all H·W·C elements; each image's N and H
 *              curves min–max normalised over t, the per-image HQS then averaged over images.
 * Two scalings (a separate switch; same ordering within a form):
 *   paper: N̄ − H̄ ∈ [−1, 1];   code: (N̄ + 1 − H̄)/2 ∈ [0, 1], so ξ_code = (ξ_paper + 1)/2.
 * Selection: S = {t : HQS_t > ξ} ("threshold"), S = argmax ("largest"), or t uniform over a
 * range ("random"). Training then draws t uniformly from S at every iteration.
 */
import * as tf from '@tensorflow/tfjs-core';
import { tfSeed, type Rng } from '../util/rng.js';
import { minMax } from '../util/normalize.js';
import type { World } from '../world/types.js';
import type { Calibration, TimingRecord } from '../util/calibration.js';
import { guidanceCondition, sdsInjection, type GuidancePrompt, type GuidanceSettings } from './guidance.js';

export type HqsForm = 'released' | 'eq11-12';
export type HqsScale = 'paper' | 'code';

/** N and both entropies of one gradient image d [h, w, c] (row-major HWC). */
export function gradientStats(
  d: ArrayLike<number>,
  h: number,
  w: number,
  c: number,
): { N: number; H: number; H_full: number } {
  const m = new Float64Array(h * w);
  const all = new Float64Array(h * w * c);
  let sum = 0;
  for (let p = 0; p < h * w; p++) {
    let s = 0;
    for (let k = 0; k < c; k++) {
      const v = Math.abs(d[p * c + k]);
      all[p * c + k] = v;
      s += v;
    }
    sum += s;
    m[p] = s / c;
  }
  return { N: sum / (h * w * c), H: softmaxEntropy(m), H_full: softmaxEntropy(all) };
}

/** Entropy of softmax(v), shifted by the maximum for stability. */
function softmaxEntropy(v: Float64Array): number {
  let max = -Infinity;
  for (const x of v) max = Math.max(max, x);
  let z = 0;
  for (const x of v) z += Math.exp(x - max);
  let H = 0;
  for (const x of v) {
    const q = Math.exp(x - max) / z;
    if (q > 0) H -= q * Math.log(q);
  }
  return H;
}

// Min–max normalisation over the scanned t (Eq. 11–12) lives in util: the report pages use it too.
export { minMax };

const combine = (n: number, h: number, scale: HqsScale) => (scale === 'paper' ? n - h : (n + 1 - h) / 2);

/** HQS per scanned t from the image-averaged N̄_t and H̄_t (the released code's order). */
export function hqsCurve(N: number[], H: number[], scale: HqsScale): number[] {
  const n = minMax(N);
  const h = minMax(H);
  return n.map((x, i) => combine(x, h[i], scale));
}

/** Per-image statistics of a scan: [t][image]. */
export interface ScanStats {
  N: number[][];
  /** Entropy of the spatial softmax of the channel mean (released). */
  H: number[][];
  /** Entropy of the softmax over every element (Eq. 9 read literally). */
  H_full: number[][];
}

export interface HqsReading {
  form: HqsForm;
  scale: HqsScale;
  /** Image-averaged N_t and H_t (H of the form's softmax), before normalisation. */
  N: number[];
  H: number[];
  hqs: number[];
}

const avg = (rows: number[][]) => rows.map((r) => r.reduce((a, b) => a + b, 0) / r.length);

/** The HQS curve of a scan in a given form and scaling. */
export function readHqs(stats: ScanStats, form: HqsForm, scale: HqsScale): HqsReading {
  const H = form === 'released' ? stats.H : stats.H_full;
  const N = avg(stats.N);
  const Hm = avg(H);
  if (form === 'released') return { form, scale, N, H: Hm, hqs: hqsCurve(N, Hm, scale) };
  const k = stats.N[0]?.length ?? 0;
  const perImage = Array.from({ length: k }, (_, i) => {
    const n = minMax(stats.N.map((row) => row[i]));
    const h = minMax(H.map((row) => row[i]));
    return n.map((x, t) => combine(x, h[t], scale));
  });
  const hqs = stats.N.map((_, t) => perImage.reduce((a, img) => a + img[t], 0) / k);
  return { form, scale, N, H: Hm, hqs };
}

export type SelectionStrategy = 'random' | 'threshold' | 'largest';

export interface SelectionSettings {
  strategy: SelectionStrategy;
  /** Threshold ξ, in the same form and scaling as the curve. */
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
  if (keep.length === 0)
    throw new RangeError(`no scanned timestep has HQS > ξ = ${s.xi} (max ${Math.max(...hqs).toFixed(3)})`);
  return {
    strategy: 'threshold',
    timesteps: keep,
    mean_hqs: mean(keep.map((t) => hqs[timesteps.indexOf(t)])),
    size: keep.length,
  };
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

/** A scan: per-image statistics for every scanned t, from which any form/scaling is read. */
export interface HqsScan {
  timesteps: number[];
  stats: ScanStats;
  images: number;
  /**
   * τ_HQS when the scan was computed (a cache hit reports the original's): timesteps × the median
   * timestep under the device lock when calibrated (`timing`), else the scan's wall time.
   */
  seconds: number;
  timing?: TimingRecord;
}

/** Spelled as the experiment files spell them (method.params.vae_sample, hqs.top_k_per). */
export interface ScanSettings {
  guidance: GuidanceSettings;
  /** Diffusion latents as a posterior sample (the released scan's .sample()) or the mean. */
  vae_sample: boolean;
  /** Top-k sparsification per image (the released scan feeds images one at a time) or over all K. */
  top_k_per: 'image' | 'batch';
}

/**
 * The Gaussian draws of the scan's i-th timestep from outside, instead of tf.randomNormal: only the
 * torch twin's parity test passes it (the draws python/sdd_torch/sdd/hqs.py reads). Called inside
 * the timestep's tidy.
 */
export type ScanNoise = (i: number) => { sds: tf.Tensor4D; vae: tf.Tensor4D };

/**
 * Scans `timesteps` on images x (the generator's output for the K latents, made by the caller:
 * the code uses G(w + 0.1·M(w)) with an untrained mapper). One noise draw (and one VAE posterior
 * draw) per (image, t). Reads the gradients back asynchronously, once per t.
 */
export async function hqsScan(
  world: World,
  images: tf.Tensor4D,
  prompt: GuidancePrompt,
  timesteps: number[],
  s: ScanSettings,
  rng: Rng,
  onStep?: (i: number) => void,
  cal?: Calibration,
  noiseAt?: ScanNoise,
): Promise<HqsScan> {
  const t0 = performance.now();
  const [k, h, w, c] = images.shape;
  const cond = await guidanceCondition(world.diffusion, prompt, k);
  const stats: ScanStats = { N: [], H: [], H_full: [] };
  const guidance = { ...s.guidance, top_k_per: s.top_k_per };
  try {
    for (const [i, t] of timesteps.entries()) {
      await cal?.begin();
      const seeds = [rng.int(2 ** 31), rng.int(2 ** 31)];
      const d = tf.tidy(() => {
        const injected = noiseAt?.(i);
        const noise =
          injected?.sds ??
          (tf.randomNormal([k, ...world.diffusion.latentShape], 0, 1, 'float32', tfSeed(seeds[0])) as tf.Tensor4D);
        const vaeNoise = s.vae_sample
          ? (injected?.vae ??
            (tf.randomNormal([k, ...world.diffusion.latentShape], 0, 1, 'float32', tfSeed(seeds[1])) as tf.Tensor4D))
          : undefined;
        return tf.grad((x: tf.Tensor) =>
          sdsInjection(world.diffusion, t, cond, noise, guidance)(world.diffusion.encode(x as tf.Tensor4D, vaeNoise)),
        )(images);
      });
      const values = (await d.data()) as Float32Array; // read back: the timestep's device work is done
      await cal?.end();
      d.dispose();
      const per = Array.from({ length: k }, (_, j) =>
        gradientStats(values.subarray(j * h * w * c, (j + 1) * h * w * c), h, w, c),
      );
      stats.N.push(per.map((x) => x.N));
      stats.H.push(per.map((x) => x.H));
      stats.H_full.push(per.map((x) => x.H_full));
      onStep?.(i + 1);
    }
  } finally {
    cal?.release();
    tf.dispose([cond.context, cond.mask]);
  }
  const timing = cal?.record();
  return {
    timesteps,
    stats,
    images: k,
    seconds: cal ? cal.total : (performance.now() - t0) / 1000,
    ...(timing ? { timing } : {}),
  };
}

/** 50, 100, …, 950 (the code's default scan; 19 timesteps). */
export function scanTimesteps(from = 50, to = 950, stride = 50): number[] {
  return Array.from({ length: Math.floor((to - from) / stride) + 1 }, (_, i) => from + i * stride);
}
