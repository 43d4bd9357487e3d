/**
 * The score-distillation guidance of SDD (Eq. 7) as the released code computes it:
 *   z_t = √ᾱ_t·z + √(1−ᾱ_t)·ε        (ε = 0 for noise type "zero")
 *   ε̂  = ε(z_t, t, ∅) + s·(ε(z_t, t, c) − ε(z_t, t, ∅))   (no gradient through the U-Net)
 *   g   = w(t)·(ε̂ − ε),  w(t) = 1 − ᾱ_t by default; optionally only the k largest |g| over the
 *         whole batch kept.
 * g is the gradient injected at the diffusion latent z; autodiff carries it back through the VAE
 * encoder and the generator. Two equivalent injections: a custom-gradient op (one forward) and
 * the surrogate loss ⟨g, z⟩ with g computed off the tape (tested equal).
 */
import * as tf from '@tensorflow/tfjs-core';
import { customGradOp } from '../nn/custom_grad.js';
import type { DiffusionModels } from '../world/types.js';

export type Weighting = 'one_minus_alpha' | 'one' | 'sqrt_one_minus_alpha';

export interface GuidanceSettings {
  guidance_scale: number;
  weighting: Weighting;
  noise: 'random' | 'zero';
  /** Keep the k largest |g| across the batch (the code's "clip_grad"); null keeps all. */
  top_k: number | null;
  /**
   * Top-k over each image separately (the HQS scan, whose released form sees one image at a time)
   * or over the whole batch (the default); the YAML's `hqs.top_k_per`, spelled the same here.
   */
  top_k_per?: 'image' | 'batch';
}

export const GUIDANCE_DEFAULTS: GuidanceSettings = {
  guidance_scale: 100,
  weighting: 'one_minus_alpha',
  noise: 'random',
  top_k: null,
};

/** w(t) of the guidance for ᾱ_t (also the torch twin's plan, per selected t). */
export function guidanceWeight(w: Weighting, alphaBar: number): number {
  return w === 'one' ? 1 : w === 'one_minus_alpha' ? 1 - alphaBar : Math.sqrt(1 - alphaBar);
}

/**
 * What guides: the target text, and the text of ε̂'s base branch — "" in the released code
 * (unconditional), or the edit's source text ("a face with neutral expression"), which makes
 * s·(ε_c − ε_base) the difference between the two descriptions instead of everything the
 * target caption says.
 */
export interface GuidancePrompt {
  text: string;
  negative: string;
}

/** Condition tensors for [base; conditional] halves of a doubled batch of size 2b. */
export interface GuidanceCondition {
  context: tf.Tensor3D;
  mask: tf.Tensor2D;
}

export async function guidanceCondition(
  diffusion: DiffusionModels,
  prompt: GuidancePrompt,
  b: number,
): Promise<GuidanceCondition> {
  const c = await diffusion.textCondition([...Array(b).fill(prompt.negative), ...Array(b).fill(prompt.text)]);
  return { context: tf.tensor3d(c.context, [2 * b, c.tokens, c.dim]), mask: tf.tensor2d(c.mask, [2 * b, c.tokens]) };
}

/**
 * Zeroes all but the k largest magnitudes of g: over every element of the batch, or with
 * `perImage` over each image's elements separately.
 */
export function topKMagnitude(g: tf.Tensor, k: number, perImage = false): tf.Tensor {
  return tf.tidy(() => {
    const rows = perImage ? g.shape[0] : 1;
    const flat = tf.reshape(tf.abs(g), [rows, -1]) as tf.Tensor2D;
    if (k >= flat.shape[1]) return g.clone();
    const kth = tf.slice(tf.topk(flat, k).values, [0, k - 1], [rows, 1]);
    return tf.reshape(tf.mul(tf.reshape(g, [rows, -1]), tf.cast(tf.greaterEqual(flat, kth), 'float32')), g.shape);
  });
}

/** g for latents z (values only: nothing here is differentiated). */
export function sdsGradient(
  diffusion: DiffusionModels,
  z: tf.Tensor4D,
  t: number,
  cond: GuidanceCondition,
  noise: tf.Tensor4D,
  s: GuidanceSettings,
): tf.Tensor4D {
  return tf.tidy(() => {
    const a = diffusion.alphasCumprod[t];
    const eps = s.noise === 'zero' ? tf.zerosLike(z) : noise;
    const zt = tf.add(tf.mul(z, Math.sqrt(a)), tf.mul(eps, Math.sqrt(1 - a))) as tf.Tensor4D;
    const b = z.shape[0];
    const out = diffusion.eps(
      tf.concat([zt, zt]) as tf.Tensor4D,
      tf.fill([2 * b], t) as tf.Tensor1D,
      cond.context,
      cond.mask,
    );
    const [u, c] = tf.split(out, 2);
    const guided = tf.add(u, tf.mul(tf.sub(c, u), s.guidance_scale));
    const g = tf.mul(tf.sub(guided, eps), guidanceWeight(s.weighting, a)) as tf.Tensor4D;
    return (s.top_k ? topKMagnitude(g, s.top_k, s.top_k_per === 'image') : g) as tf.Tensor4D;
  });
}

/**
 * A scalar whose gradient w.r.t. z is g(z) (SpecifyGradient): the forward computes g once and
 * the backward returns it; the value (mean g·z, for logging) is not a meaningful loss.
 */
export function sdsInjection(
  diffusion: DiffusionModels,
  t: number,
  cond: GuidanceCondition,
  noise: tf.Tensor4D,
  s: GuidanceSettings,
): (z: tf.Tensor4D) => tf.Scalar {
  const op = customGradOp((z: tf.Tensor, save: tf.GradSaveFunc) => {
    const g = sdsGradient(diffusion, z as tf.Tensor4D, t, cond, noise, s);
    save([g]);
    return { value: tf.sum(tf.mul(g, z)), gradFunc: (dy: tf.Tensor, [gs]: tf.Tensor[]) => tf.mul(gs, dy) };
  });
  return (z) => op(z) as tf.Scalar;
}

/** The surrogate form: ⟨g, z⟩ with g a constant computed beforehand (its gradient is g). */
export function sdsSurrogate(g: tf.Tensor4D, z: tf.Tensor4D): tf.Scalar {
  return tf.sum(tf.mul(g, z));
}
