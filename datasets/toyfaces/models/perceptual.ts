/**
 * The perceptual term of the autoencoding losses (the VAE, and G∘E of the generator/encoder),
 * in the role LPIPS on a frozen VGG plays for Stable Diffusion's autoencoder: the cosine distance
 * of a frozen mini-CLIP's image embeddings of input and reconstruction. Pixel MSE alone lets a
 * 2–3-pixel mouth or brow blur into another expression at 30 dB PSNR (the first VAE kept the
 * expression on 68% of test reconstructions, the first G∘E on 38%), and then no model over those
 * latents can draw or edit expressions. CLIP, not the FID feature net: the net that judges
 * samples and edits must not be the one that trains them.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../../src/nn/params.js';
import { clipImageEmbed, type ClipConfig } from './clip.js';

/** `sha256` is filled in after training: the card records which CLIP it was. */
export interface PerceptualConfig {
  model: 'clip';
  weight: number;
  sha256?: string;
}

/**
 * Mean cosine distance of the frozen model's image embeddings (reconstruction clipped to [0, 1] as
 * it is shown). The caller loads the frozen model (train/losses.ts, from the zoo): the models here
 * never read the zoo, whose loader runs them to check a file.
 */
export function perceptualDistance(x: tf.Tensor4D, out: tf.Tensor4D, params: Params, cfg: ClipConfig): tf.Scalar {
  // The input branch depends on no trainable variable, so no gradient flows into it.
  const ex = clipImageEmbed(params, x, cfg);
  const eo = clipImageEmbed(params, tf.clipByValue(out, 0, 1) as tf.Tensor4D, cfg);
  return tf.mean(tf.sub(1, tf.sum(tf.mul(ex, eo), 1))) as tf.Scalar;
}
