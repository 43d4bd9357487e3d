/**
 * Models that can be trained data-parallel on the worker pool, by name: a worker rebuilds the
 * loss from (name, config) and receives the weights with every step.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from './params.js';
import { unet, type UNetConfig } from './unet.js';
import { featnetLoss, type FeatNetConfig } from '../../datasets/toyfaces/models/featnet.js';
import { idnetLoss, type IdNetConfig } from '../../datasets/toyfaces/models/idnet.js';
import { vaeLoss, type VaeConfig } from '../../datasets/toyfaces/models/vae.js';
import { clipLoss, type ClipConfig } from '../../datasets/toyfaces/models/clip.js';
import { stylegenLoss, type StyleGenConfig } from '../../datasets/toyfaces/models/stylegen.js';
import { ldmLoss, type LdmConfig } from '../../datasets/toyfaces/models/ldm.js';
import { diffaeLoss, type DiffAeConfig } from '../../datasets/toyfaces/models/diffae.js';

export interface ModelSpec<C> {
  loss(p: Params, x: tf.Tensor4D, y: tf.Tensor, cfg: C): tf.Scalar;
}

export const MODELS = {
  /** The bench U-Net regressing y (MSE). */
  unet: {
    loss: (p: Params, x: tf.Tensor4D, y: tf.Tensor, cfg: UNetConfig) => tf.losses.meanSquaredError(y, unet(p, x, cfg)) as tf.Scalar,
  } satisfies ModelSpec<UNetConfig>,
  /** toyfaces FID feature net: attribute classification. */
  featnet: { loss: featnetLoss } satisfies ModelSpec<FeatNetConfig>,
  /** toyfaces identity net: ArcFace loss over identity classes. */
  idnet: { loss: idnetLoss } satisfies ModelSpec<IdNetConfig>,
  /** toyfaces first-stage VAE: reconstruction + small KL; y is the reparameterisation noise. */
  vae: { loss: vaeLoss } satisfies ModelSpec<VaeConfig>,
  /** toyfaces mini-CLIP: symmetric InfoNCE; y is caption token ids. */
  clip: { loss: clipLoss } satisfies ModelSpec<ClipConfig>,
  /** toyfaces generator + encoder, trained as an autoencoder through W+. */
  stylegen: { loss: stylegenLoss } satisfies ModelSpec<StyleGenConfig>,
  /** toyfaces latent diffusion U-Net: ε-prediction; x is scaled latents, y packs noise, t and text. */
  ldm: { loss: ldmLoss } satisfies ModelSpec<LdmConfig>,
  /** toyfaces DiffAE: semantic encoder + conditional decoder, ε loss; x images, y latents/noise/t. */
  diffae: { loss: diffaeLoss } satisfies ModelSpec<DiffAeConfig>,
} as const;

export type ModelName = keyof typeof MODELS;
export type ModelConfig<N extends ModelName> = Parameters<(typeof MODELS)[N]['loss']>[3];

export function modelLoss<N extends ModelName>(name: N, p: Params, x: tf.Tensor4D, y: tf.Tensor, cfg: ModelConfig<N>): tf.Scalar {
  return (MODELS[name] as ModelSpec<ModelConfig<N>>).loss(p, x, y, cfg);
}
