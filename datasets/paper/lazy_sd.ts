/**
 * Stable Diffusion's UNet, VAE and text encoder, built on first use. Only the methods on the tfjs
 * engine need them; a run on the torch engine evaluates with Inception, CLIP and ArcFace alone, so
 * its harness never builds the ~4.4 GB of paper-random's SD weights (nor reads paper's). What
 * planning reads (the scheduler, ᾱ, the latent shape, the image size) comes from the configs.
 */
import { join } from 'node:path';
import { ConfigReader } from '../../src/diffusion/models/diffusers_config.js';
import { loadStableDiffusion } from '../../src/diffusion/models/sd_folder.js';
import { parseUNetConfig, randomUNet, type UNetConfig } from '../../src/diffusion/models/sd_unet.js';
import { parseVaeConfig, randomVae, type VaeConfig } from '../../src/diffusion/models/sd_vae.js';
import { alphasCumprod } from '../../src/diffusion/schedulers/schedule.js';
import {
  parseSchedulerConfig,
  readSchedulerConfig,
  type ModelScheduler,
} from '../../src/diffusion/schedulers/config.js';
import { parseClipConfig, randomClip } from '../../src/nn/clip.js';
import { ClipTokenizer } from '../../src/nn/clip_tokenizer.js';
import type { Params } from '../../src/nn/params.js';
import type { DiffusionModels } from '../../src/world/types.js';
import { diffusionOf, type SdParts } from '../../src/world/sd_parts.js';
import { readConfig, SEED_OFFSET, type PaperScale } from './configs.js';

/** What is known of the SD checkpoint before its weights exist. */
export interface SdSpec {
  unet: UNetConfig;
  vae: VaeConfig;
  scheduler: ModelScheduler;
  tokenizer: ClipTokenizer;
}

type SdModel = 'unet' | 'vae' | 'text_encoder';

export interface LazySd {
  readonly spec: SdSpec;
  /** Whether the weights were built (or loaded). */
  readonly built: boolean;
  /** The models, built on the first call. */
  parts(): SdParts;
  /**
   * `use` with one model's weights, without building the others: the built ones, or a copy made
   * for the call and disposed after it (paper-random-tiny writes its weights for the torch engine).
   */
  withWeights<T>(name: SdModel, use: (p: Params) => Promise<T>): Promise<T>;
  dispose(): void;
}

type Built = SdParts & { dispose(): void };

/** The line a build writes to stderr (the run's output.txt): where SD's weights were made, and that they were. */
export const SD_BUILT = "Stable Diffusion's UNet, VAE and text encoder built";

function lazySd(spec: SdSpec, what: string, build: () => Built, one?: (name: SdModel) => Params): LazySd {
  let parts: Built | null = null;
  const made = (): Built => {
    const p = build();
    process.stderr.write(`${SD_BUILT}: ${what}\n`);
    return p;
  };
  const stores = (p: SdParts): Record<SdModel, Params> => ({
    unet: p.unet.params,
    vae: p.vae.params,
    text_encoder: p.textEncoder.params,
  });
  return {
    spec,
    get built() {
      return parts !== null;
    },
    parts: () => (parts ??= made()),
    async withWeights(name, use) {
      if (parts || !one) return use(stores((parts ??= made()))[name]);
      const p = one(name);
      try {
        return await use(p);
      } finally {
        p.dispose();
      }
    },
    dispose() {
      parts?.dispose();
      parts = null;
    },
  };
}

/** The pixel size SD works at (src/world/sd_parts.ts sdImageSize, from the configs). */
export const specImageSize = (s: SdSpec) => s.unet.sampleSize * 2 ** (s.vae.blockOutChannels.length - 1);

/** diffusionOf over lazy parts: the schedule and shapes at once, the models at the first encode/decode/ε. */
export function lazyDiffusion(sd: LazySd): DiffusionModels {
  const { unet, vae, scheduler } = sd.spec;
  let models: DiffusionModels | null = null;
  const built = () => (models ??= diffusionOf(sd.parts()));
  return {
    scheduler: scheduler.scheduler,
    alphasCumprod: alphasCumprod(scheduler.scheduler),
    latentShape: [unet.sampleSize, unet.sampleSize, vae.latentChannels],
    encode: (x, noise) => built().encode(x, noise),
    decode: (z) => built().decode(z),
    textCondition: (texts) => built().textCondition(texts),
    eps: (zt, t, context, mask) => built().eps(zt, t, context, mask),
  };
}

/** paper-random's SD at `scale`: seeded random weights (world seed + SEED_OFFSET) from configs/<scale>. */
export function randomSd(scale: PaperScale, seed: number, tokenizer: ClipTokenizer): LazySd {
  const cfg = (n: string) => readConfig(scale, n);
  const reader = (n: string) => new ConfigReader(cfg(n).file, cfg(n).json);
  const sched = cfg('scheduler');
  const spec: SdSpec = {
    unet: parseUNetConfig(reader('unet')),
    vae: parseVaeConfig(reader('vae')),
    scheduler: parseSchedulerConfig(sched.text, sched.file),
    tokenizer,
  };
  const te = parseClipConfig(cfg('text_encoder').file, cfg('text_encoder').json);
  const make = {
    unet: () => randomUNet(spec.unet, seed + SEED_OFFSET.unet),
    vae: () => randomVae(spec.vae, seed + SEED_OFFSET.vae),
    text_encoder: () => randomClip(te, seed + SEED_OFFSET.text_encoder),
  };
  const build = (): Built => {
    const parts = { ...spec, unet: make.unet(), vae: make.vae(), textEncoder: make.text_encoder() };
    return { ...parts, dispose: () => [parts.unet, parts.vae, parts.textEncoder].forEach((m) => m.params.dispose()) };
  };
  return lazySd(spec, `seeded random weights, configs/${scale}`, build, (n) => make[n]().params);
}

/** world paper's SD: the folder's configs now, its weights (loadStableDiffusion, every check) on first use. */
export function folderSd(dir: string): LazySd {
  const spec: SdSpec = {
    unet: parseUNetConfig(ConfigReader.of(join(dir, 'unet'))),
    vae: parseVaeConfig(ConfigReader.of(join(dir, 'vae'))),
    scheduler: readSchedulerConfig(join(dir, 'scheduler', 'scheduler_config.json')),
    tokenizer: ClipTokenizer.fromFolder(join(dir, 'tokenizer')),
  };
  return lazySd(spec, `loaded from ${dir}`, () => loadStableDiffusion(dir));
}
