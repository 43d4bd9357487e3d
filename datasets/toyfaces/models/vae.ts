/**
 * The first-stage VAE (Stable Diffusion's AutoencoderKL role): image [B,32,32,3] in [0,1] ↔ a
 * spatial latent [B,8,8,4]. Diffusion runs on `scaleFactor · z` (SD's 0.18215, here measured from
 * data after training so that scaled latents have unit standard deviation).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../../src/nn/params.js';
import { conv2d, groupNormSilu, resBlock, upsample2x } from '../../../src/nn/layers.js';
import type { PerceptualConfig } from './perceptual.js';

export interface VaeConfig {
  /** Channels at 32², 16², 8². */
  widths: number[];
  latentChannels: number;
  groups: number;
  /** Weight of the KL term against per-pixel MSE (both means): small, as SD's 1e-6 on sums. */
  klWeight: number;
  /** Set after training: 1 / std of latents over the train set. */
  scaleFactor?: number;
  /** The perceptual term (./perceptual.ts), LPIPS's role in SD's autoencoder. */
  perceptual?: PerceptualConfig;
}

export const VAE_DEFAULT: VaeConfig = {
  widths: [32, 48, 64],
  latentChannels: 4,
  groups: 8,
  klWeight: 1e-5,
  perceptual: { model: 'clip', weight: 0.1 },
};

/** Posterior parameters: mean and log-variance, each [B, 8, 8, C]. */
export function vaeEncode(p: Params, x: tf.Tensor4D, cfg: VaeConfig): { mean: tf.Tensor4D; logvar: tf.Tensor4D } {
  let h = conv2d(p, 'enc.in', tf.sub(tf.mul(x, 2), 1) as tf.Tensor4D, cfg.widths[0]);
  cfg.widths.forEach((w, i) => {
    if (i > 0) h = conv2d(p, `enc.down${i}`, h, w, 3, 2);
    h = resBlock(p, `enc.res${i}`, h, cfg.groups);
  });
  const out = conv2d(p, 'enc.out', groupNormSilu(p, 'enc.norm', h, cfg.groups), 2 * cfg.latentChannels, 1);
  const [mean, logvar] = tf.split(out, 2, 3) as [tf.Tensor4D, tf.Tensor4D];
  // SD clamps the log-variance too: keeps exp() finite early in training.
  return { mean, logvar: tf.clipByValue(logvar, -30, 20) };
}

/** Latent [B, 8, 8, C] (unscaled) → image in [0, 1] (not clipped: the loss sees overshoot). */
export function vaeDecode(p: Params, z: tf.Tensor4D, cfg: VaeConfig): tf.Tensor4D {
  const last = cfg.widths.length - 1;
  let h = conv2d(p, 'dec.in', z, cfg.widths[last]);
  for (let i = last; i >= 0; i--) {
    if (i < last) h = conv2d(p, `dec.up${i}`, upsample2x(h), cfg.widths[i]);
    h = resBlock(p, `dec.res${i}`, h, cfg.groups);
  }
  const out = conv2d(p, 'dec.out', groupNormSilu(p, 'dec.norm', h, cfg.groups), 3);
  return tf.add(tf.mul(out, 0.5), 0.5) as tf.Tensor4D;
}

/** Peak signal-to-noise ratio in dB of images in [0, 1] (reconstruction clipped to the range). */
export function psnr(a: tf.Tensor, b: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const mse = tf.mean(tf.square(tf.sub(tf.clipByValue(a, 0, 1), b)), [1, 2, 3]);
    return tf.mul(-10 / Math.LN10, tf.log(tf.maximum(mse, 1e-12))) as tf.Tensor1D;
  });
}
