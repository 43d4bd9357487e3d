/**
 * The random paper worlds' architectures: SD's and CLIP's config.json files per scale
 * (configs/full, configs/tiny), the generator's and identity network's tables, and the seed of
 * each model (the torch twins of paper-random draw theirs from the same seeds).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/util/env.js';
import type { Json } from '../../src/diffusion/models/diffusers_config.js';
import { IR_SE50_STAGES, type IrStages } from '../../src/nn/arcface.js';
import { FFHQ_CONFIG_F, type StyleGan2Config } from '../../src/nn/stylegan2.js';
import { SD_CONTRACT_MODELS, type SdContractModel } from '../../src/world/sd_parts.js';

export type PaperScale = 'full' | 'tiny';

const CONFIGS = join(PROJECT_ROOT, 'datasets', 'paper', 'configs');

/** paper-random-tiny's generator: rosinality's code paths at 64², 32-d styles, 16–32 channels (10 W+ levels). */
export const TINY_STYLE: StyleGan2Config = {
  size: 64,
  styleDim: 32,
  nMlp: 2,
  channelMultiplier: 2,
  lrMlp: 0.01,
  channels: { 4: 32, 8: 32, 16: 32, 32: 16, 64: 16 },
};
/** paper-random-tiny's identity network: IR-SE units at 16–32 channels, one per stage. */
export const TINY_IR: IrStages = [
  [1, 16],
  [1, 16],
  [1, 32],
  [1, 32],
];

export const styleConfig = (scale: PaperScale) => (scale === 'full' ? FFHQ_CONFIG_F : TINY_STYLE);
export const irStages = (scale: PaperScale) => (scale === 'full' ? IR_SE50_STAGES : TINY_IR);

/**
 * Each random model's seed: the world's seed plus this (the torch twins of paper-random draw
 * theirs from the same seeds).
 */
export const SEED_OFFSET = {
  unet: 1,
  vae: 2,
  text_encoder: 3,
  clip: 4,
  inception: 5,
  arcface: 6,
  stylegan2: 7,
} as const;

export function readConfig(scale: PaperScale, name: string): { file: string; json: Json; text: string } {
  const file = join(CONFIGS, scale, `${name}.json`);
  const text = readFileSync(file, 'utf-8');
  return { file, json: JSON.parse(text) as Json, text };
}

/** The config.json object of each SD / CLIP model at `scale`. */
export const sdConfigs = (scale: PaperScale) =>
  Object.fromEntries(SD_CONTRACT_MODELS.map((n) => [n, readConfig(scale, n).json])) as Record<SdContractModel, object>;
