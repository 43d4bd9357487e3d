/**
 * The DiffAE pair (Preechakul et al. 2022) over VAE latents: a semantic encoder image → z_sem and
 * a conditional latent-diffusion decoder ε(z_t, t, z_sem) (the U-Net attends to z_sem as a
 * single context token). Editing moves z_sem along linear attribute classifiers fitted after
 * training (stored with the weights as cls.<attribute>.<value>.*).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../../src/nn/params.js';
import { conv2d, groupNormSilu, linear } from '../../../src/nn/layers.js';
import { condUnet, type CondUNetConfig } from '../../../src/diffusion/models/cond_unet.js';
import { TOY_LATENT_UNET } from './ldm.js';

export interface DiffAeConfig extends CondUNetConfig {
  latentSize: number;
  semantic: number;
  encoderWidths: number[];
}

export const DIFFAE_DEFAULT: DiffAeConfig = {
  ...TOY_LATENT_UNET,
  semantic: 64,
  encoderWidths: [24, 48, 64, 96],
};

/** z_sem [B, semantic] from images in [0, 1]. */
export function semanticEncode(p: Params, x: tf.Tensor4D, cfg: DiffAeConfig): tf.Tensor2D {
  let h = tf.sub(tf.mul(x, 2), 1) as tf.Tensor4D;
  cfg.encoderWidths.forEach((w, i) => {
    h = groupNormSilu(p, `sem.stage${i}.norm`, conv2d(p, `sem.stage${i}.conv`, h, w, 3, i === 0 ? 1 : 2), cfg.groups);
    h = groupNormSilu(p, `sem.stage${i}.norm2`, conv2d(p, `sem.stage${i}.conv2`, h, w), cfg.groups);
  });
  return linear(p, 'sem.proj', tf.reshape(h, [x.shape[0], -1]), cfg.semantic) as tf.Tensor2D;
}

/** ε̂(z_t, t, z_sem). */
export function diffaeEps(
  p: Params,
  zt: tf.Tensor4D,
  t: tf.Tensor1D,
  zsem: tf.Tensor2D,
  cfg: DiffAeConfig,
): tf.Tensor4D {
  const b = zt.shape[0];
  return condUnet(p, zt, t, tf.reshape(zsem, [b, 1, cfg.semantic]) as tf.Tensor3D, tf.ones([b, 1]) as tf.Tensor2D, cfg);
}

/** Per-item y: scaled latent z₀ | ε | t | √ᾱ_t | √(1−ᾱ_t); x is the image the encoder sees. */
export function diffaeTargetWidth(cfg: DiffAeConfig): number {
  return 2 * cfg.latentSize ** 2 * cfg.latentChannels + 3;
}

export function diffaeLoss(p: Params, x: tf.Tensor4D, y: tf.Tensor, cfg: DiffAeConfig): tf.Scalar {
  const b = x.shape[0];
  const e = cfg.latentSize ** 2 * cfg.latentChannels;
  const shape: [number, number, number, number] = [b, cfg.latentSize, cfg.latentSize, cfg.latentChannels];
  const [z0, eps, t, sa, s1a] = tf.split(tf.reshape(y, [b, -1]), [e, e, 1, 1, 1], 1);
  const noise = tf.reshape(eps, shape);
  const zt = tf.add(
    tf.mul(tf.reshape(z0, shape), tf.reshape(sa, [b, 1, 1, 1])),
    tf.mul(noise, tf.reshape(s1a, [b, 1, 1, 1])),
  ) as tf.Tensor4D;
  const pred = diffaeEps(p, zt, tf.reshape(t, [b]) as tf.Tensor1D, semanticEncode(p, x, cfg), cfg);
  return tf.mean(tf.square(tf.sub(pred, noise))) as tf.Scalar;
}
