/**
 * Models that can be trained data-parallel on the worker pool, by name: a worker rebuilds the
 * forward function from (name, config) and receives the weights with every step.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from './params.js';
import { unet, type UNetConfig } from './unet.js';

export interface ModelSpec<C> {
  forward(p: Params, x: tf.Tensor4D, cfg: C): tf.Tensor;
}

export const MODELS = {
  unet: { forward: (p: Params, x: tf.Tensor4D, cfg: UNetConfig) => unet(p, x, cfg) } satisfies ModelSpec<UNetConfig>,
} as const;

export type ModelName = keyof typeof MODELS;
export type ModelConfig<N extends ModelName> = Parameters<(typeof MODELS)[N]['forward']>[2];

/** Mean squared error of the model's output against y: the loss every registered model trains on. */
export function mseLoss<N extends ModelName>(name: N, p: Params, x: tf.Tensor4D, y: tf.Tensor, cfg: ModelConfig<N>): tf.Scalar {
  const spec = MODELS[name] as ModelSpec<ModelConfig<N>>;
  return tf.losses.meanSquaredError(y, spec.forward(p, x, cfg)) as tf.Scalar;
}
