/**
 * Models that can be trained data-parallel on the worker pool, by name: a worker rebuilds the
 * loss from (name, config) and receives the weights with every step. A registry: worlds register
 * their models' losses from their own folder (nn never imports a world), and a pool that trains
 * them lists the registering module among its task modules so worker threads load it too.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from './params.js';
import { unet, type UNetConfig } from './unet.js';

export interface ModelSpec<C> {
  loss(p: Params, x: tf.Tensor4D, y: tf.Tensor, cfg: C): tf.Scalar;
}

/**
 * Model name → its config type. Worlds add their models by declaration merging
 * (`declare module '…/src/nn/models.js' { interface ModelConfigs { vae: VaeConfig } }`).
 */
export interface ModelConfigs {
  /** The bench U-Net regressing y (MSE). */
  unet: UNetConfig;
}

export type ModelName = keyof ModelConfigs;
export type ModelConfig<N extends ModelName> = ModelConfigs[N];

const MODELS = new Map<string, ModelSpec<never>>();

export function registerModel<N extends ModelName>(name: N, spec: ModelSpec<ModelConfig<N>>): void {
  const had = MODELS.get(name);
  if (had && had !== (spec as ModelSpec<never>)) throw new Error(`model '${name}' is already registered`);
  MODELS.set(name, spec as ModelSpec<never>);
}

export function modelLoss<N extends ModelName>(
  name: N,
  p: Params,
  x: tf.Tensor4D,
  y: tf.Tensor,
  cfg: ModelConfig<N>,
): tf.Scalar {
  const spec = MODELS.get(name) as ModelSpec<ModelConfig<N>> | undefined;
  if (!spec)
    throw new Error(
      `model '${name}' is not registered (have: ${[...MODELS.keys()].join(', ')}); import the module that registers it`,
    );
  return spec.loss(p, x, y, cfg);
}

const unetSpec: ModelSpec<UNetConfig> = {
  loss: (p, x, y, cfg) => tf.losses.meanSquaredError(y, unet(p, x, cfg)) as tf.Scalar,
};
registerModel('unet', unetSpec);
