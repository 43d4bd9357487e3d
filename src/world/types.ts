/**
 * What an editing method may use of a world: a style generator with its encoder, a latent
 * diffusion supervisor (VAE + text-conditional ε-model), an image–text model, an identity model
 * and an attribute judge. SDD and the baselines are written against this interface only; the
 * toyfaces zoo implements it now, real checkpoints (StyleGAN2 + e4e, Stable Diffusion, CLIP,
 * ArcFace) later. Images are NHWC in [0, 1]; every tensor function is differentiable.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors.js';
import type { Condition } from '../diffusion/pipelines/sample.js';
import type { SchedulerConfig } from '../diffusion/schedulers/ddim.js';
import type { FileRole, WorldFiles } from './files.js';
import type { ExtractorDef } from '../metrics/features.js';

export type LevelGroup = 'coarse' | 'medium' | 'fine';

export interface StyleModels {
  /** W+ shape: `levels` style vectors of `dim`. */
  levels: number;
  dim: number;
  /** Level ranges [from, to) of each group (StyleGAN's coarse / medium / fine). */
  groups: Record<LevelGroup, [number, number]>;
  generate(wplus: tf.Tensor3D): tf.Tensor4D;
  /** Inversion (the e4e role); a world whose images are W+ codes (`codes`) needs none. */
  encode?(images: tf.Tensor4D): tf.Tensor3D;
}

/**
 * A world whose images are generated from W+ codes (e4e inversions from a file, or codes sampled
 * through the mapping network): the codes themselves, [n, levels, dim] on the device, so no image
 * is inverted and none is read back to make them.
 */
export interface WorldCodes {
  /** The first m evaluation codes of a prompt. */
  sources(promptId: string, m: number): tf.Tensor3D;
  /** n training codes (what a latent mapper trains on). */
  train(n: number): tf.Tensor3D;
  /** Where they come from, recorded with runs. */
  describe: string;
}

export interface DiffusionModels {
  /** The ε-model's DDIM setting (schedule, steps_offset, set_alpha_to_one): samplers use it, not SD's. */
  scheduler: SchedulerConfig;
  /** Training schedule ᾱ_t, t = 0..T−1 (of `scheduler`). */
  alphasCumprod: Float64Array;
  /** Per-sample latent shape [H, W, C]. */
  latentShape: [number, number, number];
  /** Image → scaled latent (posterior mean + σ·noise when noise is given, as SD's .sample()). */
  encode(images: tf.Tensor4D, noise?: tf.Tensor4D): tf.Tensor4D;
  decode(latents: tf.Tensor4D): tf.Tensor4D;
  /** Text condition for the ε-model (context + key mask); "" is the unconditional prompt. */
  textCondition(texts: string[]): Promise<Condition>;
  /** ε(z_t, t, condition) with the condition tensors of textCondition. */
  eps(zt: tf.Tensor4D, t: tf.Tensor1D, context: tf.Tensor3D, mask: tf.Tensor2D): tf.Tensor4D;
}

export interface ImageTextModel {
  id: string;
  /** How images are prepared for the image tower, where that differs from the reference pipeline. */
  preprocess?: string;
  imageEmbed(images: tf.Tensor4D): tf.Tensor2D;
  textEmbed(texts: string[]): tf.Tensor2D;
}

export interface IdentityModel {
  id: string;
  /** Unit-norm identity embeddings. */
  embed(images: tf.Tensor4D): tf.Tensor2D;
}

export interface AttributeJudge {
  /** Head names in column order; predictions are class indices [n, names.length]. */
  names: string[];
  valuesOf(name: string): readonly string[];
  predict(images: tf.Tensor4D): Promise<Int32Array>;
}

/** An edit prompt whose success is checkable: the attribute and its source/target values. */
export interface EditPromptSpec {
  id: string;
  attribute: string;
  source: string;
  target: string;
  /** Guidance text (target) and the source text (directional CLIP). */
  text: string;
  sourceText: string;
  group: string;
}

/** A DiffAE pair (semantic encoder + z_sem-conditioned latent decoder) with attribute classifiers. */
export interface DiffAeModels {
  /** The DiffAE decoder's own DDIM setting. */
  scheduler: SchedulerConfig;
  encode(images: tf.Tensor4D): tf.Tensor2D;
  eps(zt: tf.Tensor4D, t: tf.Tensor1D, zsem: tf.Tensor2D): tf.Tensor4D;
  /** z_sem ↔ the classifiers' normalised space. */
  normalise(z: tf.Tensor2D): tf.Tensor2D;
  denormalise(z: tf.Tensor2D): tf.Tensor2D;
  /** Unit direction in normalised space that raises `target` of `attribute` (over `source`, when given). */
  direction(attribute: string, target: string, source?: string): tf.Tensor1D;
}

export interface World {
  name: string;
  prompts: EditPromptSpec[];
  /** The first m evaluation images showing the prompt's source value, NHWC in [0, 1]. */
  sources(promptId: string, m: number): Float32Array;
  /** n training images (any attributes): what a latent mapper trains on, after inversion. */
  trainImages(n: number): Float32Array;
  /** Weight hashes of every model, recorded with each run. */
  fingerprint: Record<string, string>;
  imageSize: number;
  /** The GAN and its encoder (SDD, StyleCLIP, and `sources: reconstructed` need them). */
  style?: StyleModels;
  /** Present when the world's images are G(W+) of known codes: inversion is skipped. */
  codes?: WorldCodes;
  diffusion: DiffusionModels;
  clip: ImageTextModel;
  /** Identity similarity (a metric, and SDD's ID loss). */
  identity?: IdentityModel;
  /** Ground-truth attribute heads (hit / preservation rates). */
  judge?: AttributeJudge;
  /** The FID/KID feature extractor (the Inception role). */
  fid: {
    id: string;
    features(images: tf.Tensor4D): tf.Tensor2D;
    /** How images reach the extractor's size, when it is not the world's (recorded with every FID). */
    resize?: string;
  };
  /** Present when the world ships a DiffAE pair (the DiffAE baseline needs it). */
  diffae?: DiffAeModels;
  /** What a method on another engine (torch) needs of it besides images; absent: no other engine. */
  contract?: WorldContract;
  dispose(): void;
}

/**
 * A world as the torch engine sees it (src/methods/engines/torch_run.ts writes it into the run's
 * manifest): the weights it loads and the token ids of texts, so the other engine loads the same
 * files and never tokenizes (our tokenizer is the only one).
 */
export interface WorldContract {
  /**
   * Each model by name: its weights file (absolute), their SHA-256 and the model's architecture;
   * weights and sha256 null where the twin makes seeded random weights itself (architecture.seed).
   */
  models: Record<string, ContractModel>;
  /** Token ids of each text, padded to the text encoder's length. */
  tokenize(texts: string[]): number[][];
  /** Makes what `models` names (files the harness writes); the engine awaits it before reading `models`. */
  prepare?(): Promise<void>;
}

export interface ContractModel {
  weights: string | null;
  sha256: string | null;
  architecture: Record<string, unknown>;
}

/**
 * A world as the registry knows it: one per world, listed in datasets/index.ts (a new world is its
 * module exporting a WorldDef plus that one line). Lower layers reach worlds only by name, through
 * src/world/registry.ts.
 */
export interface WorldDef {
  /** As experiment files name it (`world: toyfaces`). */
  name: string;
  /** One line for listings. */
  describe: string;
  /** Files it loads from outside the repository, by role (`checkpoints:`); none for embedded worlds. */
  roles?: Record<string, FileRole>;
  /** FID feature extractors it brings (`sdd fid --features ID`), by id. */
  extractors?: Record<string, ExtractorDef>;
  /** Its models' hashes without loading them (cards, or file hashes): cheap enough for planning. */
  fingerprint(files: WorldFiles): Record<string, string>;
  load(files: WorldFiles): World;
}

const PART_USE: Record<'style' | 'identity' | 'judge' | 'diffae', string> = {
  style: 'a StyleGAN generator and its encoder',
  identity: 'an identity model',
  judge: 'attribute heads',
  diffae: 'a DiffAE pair',
};

/** A world's optional part, or a one-line error naming the world, the part and who asked. */
export function worldPart<K extends keyof typeof PART_USE>(world: World, part: K, who: string): NonNullable<World[K]> {
  const v = world[part];
  if (v === undefined || v === null)
    throw new UserError(`${who} needs ${PART_USE[part]}; world '${world.name}' has none`);
  return v as NonNullable<World[K]>;
}
