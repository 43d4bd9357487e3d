/**
 * The paper's setting. `paper`: Stable Diffusion v1-4 (with its CLIP ViT-L/14 text encoder),
 * StyleGAN2-FFHQ config-f 1024², ArcFace IR-SE50, CLIP ViT-B/32 and pytorch-fid's Inception from
 * their published files (roles.ts), with W+ codes from StyleCLIP's e4e inversions or sampled through
 * the mapping network. `paper-random`: the same architectures at full size with seeded random
 * weights, created on the device (no download): the images are meaningless, the compute is the
 * paper's. `paper-random-tiny`: the same code paths at small widths (CI and smoke runs).
 *
 * Images are G(w) resized 1024 → 512 (bilinear, half-pixel centres: exactly a 2×2 mean) for SD's
 * VAE, as the released code does; the ID loss pools them further (e4e's crop), which equals pooling
 * the 1024² output directly.
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../../src/errors.js';
import { PROJECT_ROOT } from '../../src/util/env.js';
import { asFloat32 } from '../../src/util/safetensors.js';
import { openWeights } from '../../src/util/safetensors_lazy.js';
import { requireWorldFiles, worldFiles, type WorldFiles } from '../../src/world/files.js';
import type {
  ContractModel,
  LevelGroup,
  StyleModels,
  World,
  WorldCodes,
  WorldContract,
  WorldDef,
} from '../../src/world/types.js';
import {
  arcfaceOf,
  clipOf,
  diffusionOf,
  inceptionFidOf,
  SD_CONTRACT_MODELS,
  sdContractModels,
  sdImageSize,
  tokenRows,
  type SdContractModel,
  type SdParts,
  type WeightsRef,
} from '../../src/world/sd_parts.js';
import { writeTorchWeights } from '../../src/nn/torch_weights.js';
import { loadStableDiffusion } from '../../src/diffusion/models/sd_folder.js';
import {
  ConfigReader,
  diffusersWeights,
  readJsonObject,
  type Json,
} from '../../src/diffusion/models/diffusers_config.js';
import { parseUNetConfig, randomUNet } from '../../src/diffusion/models/sd_unet.js';
import { parseVaeConfig, randomVae } from '../../src/diffusion/models/sd_vae.js';
import { parseSchedulerConfig, type ModelScheduler } from '../../src/diffusion/schedulers/config.js';
import { loadClip, parseClipConfig, randomClip, weightsIn, type Clip } from '../../src/nn/clip.js';
import { ClipTokenizer } from '../../src/nn/clip_tokenizer.js';
import { loadInception } from '../../src/metrics/inception.js';
import { randomInception } from '../../src/nn/inception_fid.js';
import { IR_SE50_STAGES, loadIrSe50, randomIrSe50, type IrStages } from '../../src/nn/arcface.js';
import type { Params } from '../../src/nn/params.js';
import {
  averageLatent,
  FFHQ_CONFIG_F,
  loadStyleGan2,
  mapping,
  nLatent,
  randomStyleGan2,
  STYLEGAN2_TORCH_LAYOUT,
  synthesis,
  truncate,
  type StyleGan2,
  type StyleGan2Config,
} from '../../src/nn/stylegan2.js';
import { fileSha256, sdClipFingerprint } from '../real/world.js';
import { PAPER_PROMPTS } from './prompts.js';
import { codesShape, PAPER_ROLES } from './roles.js';

/** Truncation of sampled codes (StyleCLIP's and SDD's generation scripts sample with ψ 0.7). */
const SAMPLED_PSI = 0.7;
/** Seed of the random worlds' weights and of sampled codes: part of the world, not of a run. */
const WORLD_SEED = 20230;

const CONFIGS = join(PROJECT_ROOT, 'datasets', 'paper', 'configs');
export type PaperScale = 'full' | 'tiny';

/** paper-random-tiny's generator: rosinality's code paths at 64², 32-d styles, 16–32 channels (10 W+ levels). */
const TINY_STYLE: StyleGan2Config = {
  size: 64,
  styleDim: 32,
  nMlp: 2,
  channelMultiplier: 2,
  lrMlp: 0.01,
  channels: { 4: 32, 8: 32, 16: 32, 32: 16, 64: 16 },
};
/** paper-random-tiny's identity network: IR-SE units at 16–32 channels, one per stage. */
const TINY_IR: IrStages = [
  [1, 16],
  [1, 16],
  [1, 32],
  [1, 32],
];

/** StyleCLIP's LevelsMapper split of W+: coarse 0–3, medium 4–7, fine 8 onwards. */
function styleGroups(levels: number): Record<LevelGroup, [number, number]> {
  return { coarse: [0, 4], medium: [4, 8], fine: [8, levels] };
}

/** G(W+) in [0, 1], resized to the diffusion model's size. */
function styleOf(g: StyleGan2, imageSize: number): StyleModels {
  return {
    levels: nLatent(g.config),
    dim: g.config.styleDim,
    groups: styleGroups(nLatent(g.config)),
    generate(wplus) {
      const x = tf.add(tf.mul(synthesis(g.params, g.config, wplus), 0.5), 0.5) as tf.Tensor4D;
      return x.shape[1] === imageSize ? x : tf.image.resizeBilinear(x, [imageSize, imageSize], false, true);
    },
  };
}

/** Codes through the mapping network: w = ψ-truncated mapping(z), z seeded per stream, the same w at every level. */
function sampledCodes(g: StyleGan2, seed: number): WorldCodes {
  const avg = averageLatent(g, seed);
  const sample = (stream: number, n: number) =>
    tf.tidy(() => {
      const z = tf.randomNormal([n, g.config.styleDim], 0, 1, 'float32', seed + stream);
      const w = truncate(mapping(g.params, g.config, z as tf.Tensor2D), avg, SAMPLED_PSI);
      return tf.tile(tf.reshape(w, [n, 1, g.config.styleDim]), [1, nLatent(g.config), 1]) as tf.Tensor3D;
    });
  // Every prompt edits the same test faces, as the paper's m test images.
  return {
    sources: (_p, m) => sample(1, m),
    train: (n) => sample(2, n),
    describe: `sampled: mapping(z), truncation ψ ${SAMPLED_PSI}, seed ${seed}`,
  };
}

/** Codes from a file (tools/convert_latents.py), the first n; their shape must be the generator's W+. */
function fileCodes(path: string, g: StyleGan2): (n: number) => tf.Tensor3D {
  const [count, levels, dim] = codesShape(path, [nLatent(g.config), g.config.styleDim]);
  let values: Float32Array | null = null;
  return (n) => {
    if (n > count) throw new UserError(`${path}: ${count} codes, the run asks for ${n}`);
    if (!values) {
      const src = openWeights(path);
      values = asFloat32(src.read('wplus'));
      src.close();
    }
    return tf.tensor3d(values.subarray(0, n * levels * dim), [n, levels, dim]);
  };
}

interface PaperModels {
  sd: SdParts;
  clip: Clip;
  clipTokenizer: ClipTokenizer;
  inception: Params;
  arcface: Params;
  irStages: IrStages;
  g: StyleGan2;
  /** What the torch engine loads (python/sdd_torch/worlds/paper.py). */
  contract: WorldContract;
  dispose(): void;
}

function paperWorld(
  name: string,
  m: PaperModels,
  codes: (g: StyleGan2) => WorldCodes,
  fingerprint: Record<string, string>,
): World {
  const imageSize = sdImageSize(m.sd);
  const short = (k: string) => (fingerprint[k] ?? fingerprint.models).slice(0, 12);
  const noImages = (): never => {
    throw new UserError(`world '${name}' has no photographs: its images are G(w) of its W+ codes`);
  };
  return {
    name,
    fingerprint,
    imageSize,
    prompts: PAPER_PROMPTS,
    sources: noImages,
    trainImages: noImages,
    style: styleOf(m.g, imageSize),
    codes: codes(m.g),
    diffusion: diffusionOf(m.sd),
    clip: clipOf(m.clip, m.clipTokenizer, `clip:${short('clip')}`),
    identity: arcfaceOf(m.arcface, `arcface-ir-se50:${short('arcface')}`, m.irStages),
    fid: inceptionFidOf(m.inception, imageSize, `inception:${short('inception')}`),
    contract: m.contract,
    dispose: () => m.dispose(),
  };
}

function readConfig(scale: PaperScale, name: string): { file: string; json: Json; text: string } {
  const file = join(CONFIGS, scale, `${name}.json`);
  const text = readFileSync(file, 'utf-8');
  return { file, json: JSON.parse(text) as Json, text };
}

/** Each random model's seed: the world's seed plus this (the torch twins of paper-random draw theirs from the same seeds). */
const SEED_OFFSET = { unet: 1, vae: 2, text_encoder: 3, clip: 4, inception: 5, arcface: 6, stylegan2: 7 } as const;

/** StyleGAN2's architecture as python/sdd_torch/models/stylegan2.py's StyleGan2Config names it (seeded weights have no file to read it from). */
function styleArchitecture(c: StyleGan2Config): Record<string, unknown> {
  return {
    size: c.size,
    style_dim: c.styleDim,
    n_mlp: c.nMlp,
    channel_multiplier: c.channelMultiplier,
    lr_mlp: c.lrMlp,
    ...(c.channels ? { channels: c.channels } : {}),
  };
}

const sdConfigs = (scale: PaperScale) =>
  Object.fromEntries(SD_CONTRACT_MODELS.map((n) => [n, readConfig(scale, n).json])) as Record<SdContractModel, object>;

const styleConfig = (scale: PaperScale) => (scale === 'full' ? FFHQ_CONFIG_F : TINY_STYLE);
const irStages = (scale: PaperScale) => (scale === 'full' ? IR_SE50_STAGES : TINY_IR);

/**
 * paper-random's contract (`scale` full; tiny for the test of this path): every model by its
 * architecture and seed, no file. The torch twins draw their own weights from these seeds
 * (deterministic per seed, not the TS engine's values: at full size the two engines compute with
 * different random weights).
 */
export function seededContract(
  scale: PaperScale,
  scheduler: ModelScheduler,
  tokenizer: ClipTokenizer,
  seed: number,
): WorldContract {
  const seeded = (name: 'stylegan2' | 'arcface', architecture: Record<string, unknown>): ContractModel => ({
    weights: null,
    sha256: null,
    architecture: { seed: seed + SEED_OFFSET[name], ...architecture },
  });
  return {
    models: {
      ...sdContractModels(scheduler, sdConfigs(scale), (n) => ({ seed: seed + SEED_OFFSET[n] })),
      stylegan2: seeded('stylegan2', { config: styleArchitecture(styleConfig(scale)) }),
      arcface: seeded('arcface', { stages: irStages(scale) }),
    },
    tokenize: (texts) => tokenRows(tokenizer, texts),
  };
}

/** Where the harness writes weights for the torch engine (content-addressed; never in the repository). */
const torchWeightsDir = () => join(process.env.SDD_CACHE ?? join(PROJECT_ROOT, '.cache'), 'torch-weights');

/**
 * paper-random-tiny's contract: TS's seeded weights written in PyTorch's layout into the cache
 * (prepare, once per process), so both engines compute with the same weights.
 */
function writtenContract(m: Omit<PaperModels, 'contract' | 'dispose'>, scale: PaperScale): WorldContract {
  let models: Record<string, ContractModel> | null = null;
  let pending: Promise<void> | null = null;
  const write = async (): Promise<void> => {
    const dir = torchWeightsDir();
    const stores: Record<SdContractModel, Params> = {
      unet: m.sd.unet.params,
      vae: m.sd.vae.params,
      text_encoder: m.sd.textEncoder.params,
      clip: m.clip.params,
    };
    const refs: Partial<Record<SdContractModel, WeightsRef>> = {};
    for (const n of SD_CONTRACT_MODELS) refs[n] = await writeTorchWeights(dir, stores[n]);
    const stylegan2 = await writeTorchWeights(dir, m.g.params, STYLEGAN2_TORCH_LAYOUT);
    const arcface = await writeTorchWeights(dir, m.arcface);
    models = {
      ...sdContractModels(m.sd.scheduler, sdConfigs(scale), (n) => refs[n]!),
      // The generator's architecture comes from the file's shapes; the identity net's stages cannot.
      stylegan2: { ...stylegan2, architecture: {} },
      arcface: { ...arcface, architecture: { stages: m.irStages } },
    };
  };
  return {
    get models() {
      if (!models)
        throw new Error('paper-random-tiny: WorldContract.prepare() writes the weights before models is read');
      return models;
    },
    tokenize: (texts) => tokenRows(m.sd.tokenizer, texts),
    prepare: () => (pending ??= write()),
  };
}

/** Every model of the paper at `scale` with seeded random weights. */
function randomModels(scale: PaperScale, seed: number): PaperModels {
  const unet = readConfig(scale, 'unet');
  const vae = readConfig(scale, 'vae');
  const te = readConfig(scale, 'text_encoder');
  const clipCfg = readConfig(scale, 'clip');
  const sched = readConfig(scale, 'scheduler');
  // One vocabulary for both towers: with random weights only the token count matters.
  const tokenizer = ClipTokenizer.fromFolder(join(PROJECT_ROOT, 'datasets', 'paper', 'tokenizer'));
  const sd: SdParts = {
    unet: randomUNet(parseUNetConfig(new ConfigReader(unet.file, unet.json)), seed + SEED_OFFSET.unet),
    vae: randomVae(parseVaeConfig(new ConfigReader(vae.file, vae.json)), seed + SEED_OFFSET.vae),
    textEncoder: randomClip(parseClipConfig(te.file, te.json), seed + SEED_OFFSET.text_encoder),
    tokenizer,
    scheduler: parseSchedulerConfig(sched.text, sched.file),
  };
  const clip = randomClip(parseClipConfig(clipCfg.file, clipCfg.json), seed + SEED_OFFSET.clip);
  const inception = randomInception(seed + SEED_OFFSET.inception);
  const stages = irStages(scale);
  const arcface = randomIrSe50(seed + SEED_OFFSET.arcface, stages);
  const g = randomStyleGan2(styleConfig(scale), seed + SEED_OFFSET.stylegan2);
  const parts = { sd, clip, clipTokenizer: tokenizer, inception, arcface, irStages: stages, g };
  return {
    ...parts,
    contract: scale === 'full' ? seededContract(scale, sd.scheduler, tokenizer, seed) : writtenContract(parts, scale),
    dispose() {
      for (const p of [sd.unet.params, sd.vae.params, sd.textEncoder.params, clip.params, inception, arcface])
        p.dispose();
      g.dispose();
    },
  };
}

/** What identifies a random world: its scale, seed and the configs (the weights follow from them). */
function paperRandomFingerprint(scale: PaperScale): Record<string, string> {
  const h = createHash('sha256').update(`paper-random ${scale} seed ${WORLD_SEED} psi ${SAMPLED_PSI}`);
  for (const n of ['unet', 'vae', 'text_encoder', 'clip', 'scheduler']) h.update(readConfig(scale, n).text);
  h.update(JSON.stringify(scale === 'full' ? [FFHQ_CONFIG_F, IR_SE50_STAGES] : [TINY_STYLE, TINY_IR]));
  // The seeds in plain words too: every random draw of the world is recorded with each run.
  return {
    models: h.digest('hex'),
    weights: `seeded random, seed ${WORLD_SEED}`,
    codes: `sampled psi ${SAMPLED_PSI} seed ${WORLD_SEED}`,
  };
}

function loadPaperRandomWorld(scale: PaperScale): World {
  const name = scale === 'full' ? 'paper-random' : 'paper-random-tiny';
  return paperWorld(
    name,
    randomModels(scale, WORLD_SEED),
    (g) => sampledCodes(g, WORLD_SEED),
    paperRandomFingerprint(scale),
  );
}

/** The weights files behind each model of `world: paper`, and the codes files: what a run records. */
function paperFingerprint(files: WorldFiles = worldFiles()): Record<string, string> {
  requireWorldFiles('paper', files, 'world paper');
  return {
    ...sdClipFingerprint(files.sd, files.clip),
    inception: fileSha256(files.inception),
    stylegan2: fileSha256(files.stylegan2),
    arcface: fileSha256(files.arcface),
    codes: files.codes ? fileSha256(files.codes) : `sampled psi ${SAMPLED_PSI} seed ${WORLD_SEED}`,
    train_codes: files.train_codes ? fileSha256(files.train_codes) : `sampled psi ${SAMPLED_PSI} seed ${WORLD_SEED}`,
  };
}

/**
 * world paper's contract: the published files themselves (the folders' weights files or sharded
 * indexes, hashed once: fileSha256 caches), each model's config.json; the ids of one tokenizer
 * serve both the text encoder and CLIP, so the two folders' tokenizers must agree on them.
 */
function filesContract(files: WorldFiles, sd: SdParts, clipTokenizer: ClipTokenizer): WorldContract {
  const dirs: Record<SdContractModel, string> = {
    unet: join(files.sd, 'unet'),
    vae: join(files.sd, 'vae'),
    text_encoder: join(files.sd, 'text_encoder'),
    clip: files.clip,
  };
  const file = (path: string) => ({ weights: path, sha256: fileSha256(path) });
  let models: Record<string, ContractModel> | null = null;
  return {
    get models() {
      models ??= {
        ...sdContractModels(
          sd.scheduler,
          Object.fromEntries(
            SD_CONTRACT_MODELS.map((n) => [n, readJsonObject(join(dirs[n], 'config.json'))]),
          ) as Record<SdContractModel, object>,
          (n) => file(n === 'unet' || n === 'vae' ? diffusersWeights(dirs[n]) : weightsIn(dirs[n])),
        ),
        stylegan2: { ...file(files.stylegan2), architecture: {} },
        arcface: { ...file(files.arcface), architecture: { stages: IR_SE50_STAGES } },
      };
      return models;
    },
    tokenize(texts) {
      const ids = tokenRows(sd.tokenizer, texts);
      if (JSON.stringify(ids) !== JSON.stringify(tokenRows(clipTokenizer, texts))) {
        throw new UserError(
          `engine: torch: ${files.sd}/tokenizer and ${files.clip} tokenize ${JSON.stringify(texts)} differently; the torch engine takes one id list for both models`,
        );
      }
      return ids;
    },
  };
}

function loadPaperWorld(files: WorldFiles = worldFiles()): World {
  requireWorldFiles('paper', files, 'world paper');
  const sd = loadStableDiffusion(files.sd);
  const clip = loadClip(files.clip);
  if (!clip.config.vision)
    throw new UserError(
      `${files.clip}: a CLIPModel (both towers) is needed for CLIP similarity, not a ${clip.config.kind}`,
    );
  const inception = loadInception(files.inception);
  const arcface = loadIrSe50(files.arcface);
  const g = loadStyleGan2(files.stylegan2);
  const clipTokenizer = ClipTokenizer.fromFolder(files.clip);
  const models: PaperModels = {
    sd,
    clip,
    clipTokenizer,
    inception,
    arcface,
    irStages: IR_SE50_STAGES,
    g,
    contract: filesContract(files, sd, clipTokenizer),
    dispose() {
      sd.dispose();
      for (const p of [clip.params, inception, arcface]) p.dispose();
      g.dispose();
    },
  };
  const codes = (gen: StyleGan2): WorldCodes => {
    const sampled = sampledCodes(gen, WORLD_SEED);
    const test = files.codes ? fileCodes(files.codes, gen) : null;
    const train = files.train_codes ? fileCodes(files.train_codes, gen) : null;
    return {
      sources: (p, m) => (test ? test(m) : sampled.sources(p, m)),
      train: (n) => (train ? train(n) : sampled.train(n)),
      describe: `test: ${files.codes ?? sampled.describe}; train: ${files.train_codes ?? sampled.describe}`,
    };
  };
  return paperWorld('paper', models, codes, paperFingerprint(files));
}

export const paperWorldDef: WorldDef = {
  name: 'paper',
  describe: "the paper's setting: StyleGAN2-FFHQ 1024² codes, SD v1-4, CLIP, Inception and IR-SE50 from their files",
  roles: PAPER_ROLES,
  fingerprint: paperFingerprint,
  load: loadPaperWorld,
};

export const paperRandomWorld: WorldDef = {
  name: 'paper-random',
  describe: "the paper's models at full size with seeded random weights (no download)",
  fingerprint: () => paperRandomFingerprint('full'),
  load: () => loadPaperRandomWorld('full'),
};

export const paperRandomTinyWorld: WorldDef = {
  name: 'paper-random-tiny',
  describe: "the paper's code paths at small widths with seeded random weights (CPU)",
  fingerprint: () => paperRandomFingerprint('tiny'),
  load: () => loadPaperRandomWorld('tiny'),
};
