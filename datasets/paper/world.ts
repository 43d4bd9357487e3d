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
 *
 * SD's UNet, VAE and text encoder are built on first use (lazy_sd.ts): a run on the torch engine
 * never holds them. The architectures and seeds are in configs.ts, what the torch engine is handed
 * in contracts.ts.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../../src/errors.js';
import { PROJECT_ROOT } from '../../src/util/env.js';
import { asFloat32 } from '../../src/util/safetensors.js';
import { openWeights } from '../../src/util/safetensors_lazy.js';
import { requireWorldFiles, worldFiles, type WorldFiles } from '../../src/world/files.js';
import type { LevelGroup, StyleModels, World, WorldCodes, WorldContract, WorldDef } from '../../src/world/types.js';
import { arcfaceOf, clipOf, inceptionFidOf } from '../../src/world/sd_parts.js';
import { loadClip, parseClipConfig, randomClip, type Clip } from '../../src/nn/clip.js';
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
  synthesis,
  truncate,
  type StyleGan2,
} from '../../src/nn/stylegan2.js';
import { fileSha256, sdClipFingerprint } from '../real/world.js';
import { irStages, readConfig, SEED_OFFSET, styleConfig, TINY_IR, TINY_STYLE, type PaperScale } from './configs.js';
import { filesContract, seededContract, writtenContract } from './contracts.js';
import { folderSd, lazyDiffusion, randomSd, specImageSize, type LazySd } from './lazy_sd.js';
import { PAPER_PROMPTS } from './prompts.js';
import { codesShape, PAPER_ROLES } from './roles.js';

/** Truncation of sampled codes (StyleCLIP's and SDD's generation scripts sample with ψ 0.7). */
const SAMPLED_PSI = 0.7;
/** Seed of the random worlds' weights and of sampled codes: part of the world, not of a run. */
const WORLD_SEED = 20230;

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
  /** Built on first use: a run on the torch engine never builds (or reads) SD's weights. */
  sd: LazySd;
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
  const imageSize = specImageSize(m.sd.spec);
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
    diffusion: lazyDiffusion(m.sd),
    clip: clipOf(m.clip, m.clipTokenizer, `clip:${short('clip')}`),
    identity: arcfaceOf(m.arcface, `arcface-ir-se50:${short('arcface')}`, m.irStages),
    fid: inceptionFidOf(m.inception, imageSize, `inception:${short('inception')}`),
    contract: m.contract,
    dispose: () => m.dispose(),
  };
}

/** Every model of the paper at `scale` with seeded random weights (SD's when first used). */
function randomModels(scale: PaperScale, seed: number): PaperModels {
  const clipCfg = readConfig(scale, 'clip');
  // One vocabulary for both towers: with random weights only the token count matters.
  const tokenizer = ClipTokenizer.fromFolder(join(PROJECT_ROOT, 'datasets', 'paper', 'tokenizer'));
  const sd = randomSd(scale, seed, tokenizer);
  const clip = randomClip(parseClipConfig(clipCfg.file, clipCfg.json), seed + SEED_OFFSET.clip);
  const inception = randomInception(seed + SEED_OFFSET.inception);
  const stages = irStages(scale);
  const arcface = randomIrSe50(seed + SEED_OFFSET.arcface, stages);
  const g = randomStyleGan2(styleConfig(scale), seed + SEED_OFFSET.stylegan2);
  return {
    sd,
    clip,
    clipTokenizer: tokenizer,
    inception,
    arcface,
    irStages: stages,
    g,
    contract:
      scale === 'full'
        ? seededContract(scale, sd.spec.scheduler, tokenizer, seed)
        : writtenContract({ sd, clip: clip.params, arcface, irStages: stages, g }, scale),
    dispose() {
      sd.dispose();
      for (const p of [clip.params, inception, arcface]) p.dispose();
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

function loadPaperWorld(files: WorldFiles = worldFiles()): World {
  requireWorldFiles('paper', files, 'world paper');
  const sd = folderSd(files.sd);
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
