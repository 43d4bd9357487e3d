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

/** A batch of latents [B, H, W, C]. */
type Shape4 = [number, number, number, number];
/** Where a loop starts from: host values, or a tensor the caller keeps. */
type Latents = Float32Array | tf.Tensor4D;

/** ε̂ for a batch of latents at one timestep (conditioning already bound). */
export type EpsFn = (z: tf.Tensor4D, t: number) => tf.Tensor4D;

/** x' = cx·x + ce·ε (+ cn·noise), on the device. */
function linear(x: tf.Tensor4D, eps: tf.Tensor4D, cx: number, ce: number, noise?: tf.Tensor4D, cn = 0): tf.Tensor4D {
  return tf.tidy(() => {
    const y = tf.add(tf.mul(x, cx), tf.mul(eps, ce));
    return (noise && cn > 0 ? tf.add(y, tf.mul(noise, cn)) : y) as tf.Tensor4D;
  });
}

/** Starts a device loop from host values or a tensor the caller keeps. */
const upload = (z: Latents, shape: Shape4) => (z instanceof tf.Tensor ? tf.clone(z) : tf.tensor4d(z, shape));

/**
 * The reverse loop from z at the first of `timesteps` (default: all of the scheduler's, i.e. from
 * z_T; SDEdit passes the last k); noise from the rng when η > 0. z stays on the device for the
 * whole loop: the caller gets a tensor it owns (read it with an awaited data()).
 */
export function ddimSampleTensor(
  eps: EpsFn,
  scheduler: DdimScheduler,
  zT: Latents,
  shape: Shape4,
  rng?: Rng,
  eta = scheduler.cfg.eta,
  timesteps = scheduler.timesteps,
): tf.Tensor4D {
  let z = upload(zT, shape);
  const n = shape[0] * shape[1] * shape[2] * shape[3];
  for (const t of timesteps) {
    if (eta > 0 && !rng) throw new Error('ddimSample with η > 0 needs an rng');
    const { cx, ce, cn } = scheduler.stepCoefficients(t, eta);
    // The host rng draws the noise, so a seed gives the same images on every backend.
    const noise = cn > 0 ? tf.tensor4d(normals(n, rng!), shape) : undefined;
    const e = tf.tidy(() => eps(z, t));
    const next = linear(z, e, cx, ce, noise, cn);
    tf.dispose([z, e, noise].filter((v): v is tf.Tensor4D => v !== undefined));
    z = next;
  }
  return z;
}

/** ddimSampleTensor read back once at the end. */
export async function ddimSample(...args: Parameters<typeof ddimSampleTensor>): Promise<Float32Array> {
  return readAndDispose(ddimSampleTensor(...args));
}

/**
 * Deterministic DDIM inversion z_0 → z_T (diffusers' DDIMInverseScheduler order): each step
 * predicts ε at the current (lower) timestep and moves up by one stride. Stays on the device.
 */
export function ddimInvertTensor(eps: EpsFn, scheduler: DdimScheduler, z0: Latents, shape: Shape4): tf.Tensor4D {
  const stride = Math.floor(scheduler.cfg.trainTimesteps / scheduler.cfg.steps);
  let z = upload(z0, shape);
  for (const t of scheduler.inversionTimesteps()) {
    const { cx, ce } = scheduler.invertCoefficients(t - stride);
    const e = tf.tidy(() => eps(z, Math.max(0, t - stride)));
    const next = linear(z, e, cx, ce);
    tf.dispose([z, e]);
    z = next;
  }
  return z;
}

/** ddimInvertTensor read back once at the end. */
export async function ddimInvert(...args: Parameters<typeof ddimInvertTensor>): Promise<Float32Array> {
  return readAndDispose(ddimInvertTensor(...args));
}

/** The one awaited read at the end of a loop. */
export async function readAndDispose(t: tf.Tensor): Promise<Float32Array> {
  try {
    return (await t.data()) as Float32Array;
  } finally {
    t.dispose();
  }
}

/** Classifier-free guidance over a model that takes (context, mask): one doubled batch per step. */
export function cfgEps(
  model: NoisePredictor,
  cond: Condition,
  uncond: Condition,
  guidance: number,
): { eps: EpsFn; dispose(): void } {
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
export async function sampleCfg(o: SampleOptions): Promise<Float32Array> {
  const b = o.cond.context.length / (o.cond.tokens * o.cond.dim);
  const per = o.shape[0] * o.shape[1] * o.shape[2];
  const guided = cfgEps(o.model, o.cond, o.uncond, o.guidance);
  try {
    return await ddimSample(
      guided.eps,
      o.scheduler,
      o.start ?? normals(b * per, o.rng),
      [b, ...o.shape],
      o.rng,
      o.eta ?? o.scheduler.cfg.eta,
    );
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
