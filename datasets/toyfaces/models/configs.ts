/**
 * Each zoo model's config type by model name, and the one place where a card's `architecture`
 * (parsed JSON) becomes one. That is sound because the card's architecture is the config the
 * trainer saved from that type (zoo/store.ts: saveModel), and loading a model checks its weights
 * against it (zoo/trace.ts runs the model's forward with it): a card that does not fit its code
 * fails at load with a ParamsError.
 */
import type { ClipConfig } from './clip.js';
import type { DiffAeConfig } from './diffae.js';
import type { FeatNetConfig } from './featnet.js';
import type { IdNetConfig } from './idnet.js';
import type { LdmConfig } from './ldm.js';
import type { StyleGenConfig } from './stylegen.js';
import type { VaeConfig } from './vae.js';

export interface ZooConfigs {
  featnet: FeatNetConfig;
  idnet: IdNetConfig;
  clip: ClipConfig;
  vae: VaeConfig;
  stylegen: StyleGenConfig;
  ldm: LdmConfig;
  diffae: DiffAeConfig;
}

/** Model `model`'s card architecture as its config type. */
export function configOf<K extends keyof ZooConfigs>(model: K, architecture: Record<string, unknown>): ZooConfigs[K] {
  void model; // names the type only
  return architecture as unknown as ZooConfigs[K];
}
