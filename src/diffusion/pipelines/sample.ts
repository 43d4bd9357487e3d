/**
 * Classifier-free-guided DDIM/DDPM sampling, the denoising loop written out (diffusers style):
 * the model is any ε-predictor, the scheduler any DdimScheduler, so the same loop serves the
 * toyfaces U-Net and a real checkpoint.
 *   ε̂ = ε(z, t, ∅) + w·(ε(z, t, c) − ε(z, t, ∅))
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DdimScheduler } from '../schedulers/ddim.js';
import type { Rng } from '../../util/rng.js';

/** A conditioning batch: context [B, M, D] and key mask [B, M], host arrays. */
export interface Condition {
  context: Float32Array;
  mask: Float32Array;
  tokens: number;
  dim: number;
}

export type NoisePredictor = (z: tf.Tensor4D, t: tf.Tensor1D, context: tf.Tensor3D, mask: tf.Tensor2D) => tf.Tensor4D;

export interface SampleOptions {
  model: NoisePredictor;
  scheduler: DdimScheduler;
  cond: Condition;
  uncond: Condition;
  guidance: number;
  /** Per-sample latent shape [H, W, C]. */
  shape: [number, number, number];
  rng: Rng;
  /** Start latents (e.g. from inversion); drawn from the rng when absent. */
  start?: Float32Array;
  eta?: number;
}

const normals = (n: number, rng: Rng) => Float32Array.from({ length: n }, () => rng.normal());

/** ε̂ for a batch of latents at one timestep (conditioning already bound). */
export type EpsFn = (z: tf.Tensor4D, t: number) => tf.Tensor4D;

function predict(eps: EpsFn, z: ArrayLike<number>, t: number, shape: [number, number, number, number]): Float32Array {
  const out = tf.tidy(() => eps(tf.tensor4d(Float32Array.from(z), shape), t));
  const e = out.dataSync() as Float32Array;
  out.dispose();
  return e;
}

/**
 * The reverse loop from z at the first of `timesteps` (default: all of the scheduler's, i.e. from
 * z_T; SDEdit passes the last k); noise from the rng when η > 0.
 */
export function ddimSample(eps: EpsFn, scheduler: DdimScheduler, zT: Float32Array, shape: [number, number, number, number], rng?: Rng, eta = scheduler.cfg.eta, timesteps = scheduler.timesteps): Float32Array {
  let z: Float32Array | Float64Array = zT;
  for (const t of timesteps) {
    if (eta > 0 && !rng) throw new Error('ddimSample with η > 0 needs an rng');
    z = scheduler.step(predict(eps, z, t, shape), t, z, eta > 0 ? normals(z.length, rng!) : undefined, eta);
  }
  return Float32Array.from(z);
}

/**
 * Deterministic DDIM inversion z_0 → z_T (diffusers' DDIMInverseScheduler order): each step
 * predicts ε at the current (lower) timestep and moves up by one stride.
 */
export function ddimInvert(eps: EpsFn, scheduler: DdimScheduler, z0: Float32Array, shape: [number, number, number, number]): Float32Array {
  const stride = Math.floor(scheduler.cfg.trainTimesteps / scheduler.cfg.steps);
  let z: Float32Array | Float64Array = z0;
  for (const t of scheduler.inversionTimesteps()) z = scheduler.invertStep(predict(eps, z, Math.max(0, t - stride), shape), t - stride, z);
  return Float32Array.from(z);
}

/** Classifier-free guidance over a model that takes (context, mask): one doubled batch per step. */
export function cfgEps(model: NoisePredictor, cond: Condition, uncond: Condition, guidance: number): { eps: EpsFn; dispose(): void } {
  const b = cond.context.length / (cond.tokens * cond.dim);
  const ctx = tf.tensor3d(concat(uncond.context, cond.context), [2 * b, cond.tokens, cond.dim]);
  const mask = tf.tensor2d(concat(uncond.mask, cond.mask), [2 * b, cond.tokens]);
  return {
    eps: (z, t) => {
      const out = model(tf.concat([z, z]) as tf.Tensor4D, tf.fill([2 * b], t) as tf.Tensor1D, ctx, mask);
      const [u, c] = tf.split(out, 2);
      return tf.add(u, tf.mul(tf.sub(c, u), guidance)) as tf.Tensor4D;
    },
    dispose: () => tf.dispose([ctx, mask]),
  };
}

/** Text-to-latent sampling with CFG; batch size = rows of `cond`; returns z_0 [B, H, W, C]. */
export function sampleCfg(o: SampleOptions): Float32Array {
  const b = o.cond.context.length / (o.cond.tokens * o.cond.dim);
  const per = o.shape[0] * o.shape[1] * o.shape[2];
  const guided = cfgEps(o.model, o.cond, o.uncond, o.guidance);
  try {
    return ddimSample(guided.eps, o.scheduler, o.start ?? normals(b * per, o.rng), [b, ...o.shape], o.rng, o.eta ?? o.scheduler.cfg.eta);
  } finally {
    guided.dispose();
  }
}

/** The same condition repeated n times (the unconditional batch). */
export function repeatCondition(c: Condition, n: number): Condition {
  const one = c.tokens * c.dim;
  const context = new Float32Array(n * one);
  const mask = new Float32Array(n * c.tokens);
  for (let i = 0; i < n; i++) {
    context.set(c.context.subarray(0, one), i * one);
    mask.set(c.mask.subarray(0, c.tokens), i * c.tokens);
  }
  return { ...c, context, mask };
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
