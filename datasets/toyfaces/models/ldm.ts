/**
 * The toyfaces latent diffusion model (Stable Diffusion's role): the conditional U-Net over VAE
 * latents (8×8×4, scaled by the VAE's scale factor), conditioned on mini-CLIP text hidden states,
 * trained with ε-prediction on SD's schedule and the caption dropped for classifier-free guidance.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../../src/nn/params.js';
import { condUnet, type CondUNetConfig } from '../../../src/diffusion/models/cond_unet.js';

export interface LdmConfig extends CondUNetConfig {
  latentSize: number;
  contextTokens: number;
  contextDim: number;
  /** Probability that a training caption is replaced by "" (the unconditional branch). */
  condDrop: number;
  /** Probability of the full caption (else a random partial one), when not dropped. */
  fullCaption: number;
}

/** The conditional U-Net over the VAE's 8×8×4 latents that the LDM and DiffAE's decoder share. */
export const TOY_LATENT_UNET: CondUNetConfig & { latentSize: number } = {
  widths: [64, 96],
  latentChannels: 4,
  timeDim: 64,
  heads: 4,
  groups: 8,
  latentSize: 8,
};

export const LDM_DEFAULT: LdmConfig = {
  ...TOY_LATENT_UNET,
  contextTokens: 16,
  contextDim: 64,
  condDrop: 0.1,
  fullCaption: 0.5,
};

/** Per-item layout of the trainer's y: ε | t | √ᾱ_t | √(1−ᾱ_t) | context | mask. */
export function ldmTargetWidth(cfg: LdmConfig): number {
  return cfg.latentSize ** 2 * cfg.latentChannels + 3 + cfg.contextTokens * cfg.contextDim + cfg.contextTokens;
}

export function ldmLoss(p: Params, x: tf.Tensor4D, y: tf.Tensor, cfg: LdmConfig): tf.Scalar {
  const b = x.shape[0];
  const e = cfg.latentSize ** 2 * cfg.latentChannels;
  const c = cfg.contextTokens * cfg.contextDim;
  const [eps, t, sa, s1a, ctx, mask] = tf.split(tf.reshape(y, [b, -1]), [e, 1, 1, 1, c, cfg.contextTokens], 1);
  const noise = tf.reshape(eps, x.shape);
  const zt = tf.add(
    tf.mul(x, tf.reshape(sa, [b, 1, 1, 1])),
    tf.mul(noise, tf.reshape(s1a, [b, 1, 1, 1])),
  ) as tf.Tensor4D;
  const pred = condUnet(
    p,
    zt,
    tf.reshape(t, [b]) as tf.Tensor1D,
    tf.reshape(ctx, [b, cfg.contextTokens, cfg.contextDim]) as tf.Tensor3D,
    mask as tf.Tensor2D,
    cfg,
  );
  return tf.mean(tf.square(tf.sub(pred, noise))) as tf.Scalar;
}
