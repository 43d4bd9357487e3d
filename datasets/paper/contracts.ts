/**
 * What the paper worlds hand the torch engine (WorldContract; python/sdd_torch/worlds/paper.py
 * loads it): paper its published files, paper-random every model by architecture and seed,
 * paper-random-tiny TS's seeded weights written in PyTorch's layout.
 */
import { join } from 'node:path';
import { UserError } from '../../src/errors.js';
import { PROJECT_ROOT } from '../../src/util/env.js';
import { diffusersWeights, readJsonObject } from '../../src/diffusion/models/diffusers_config.js';
import type { ModelScheduler } from '../../src/diffusion/schedulers/config.js';
import { weightsIn } from '../../src/nn/clip.js';
import type { ClipTokenizer } from '../../src/nn/clip_tokenizer.js';
import { IR_SE50_STAGES, type IrStages } from '../../src/nn/arcface.js';
import type { Params } from '../../src/nn/params.js';
import { STYLEGAN2_TORCH_LAYOUT, type StyleGan2, type StyleGan2Config } from '../../src/nn/stylegan2.js';
import { writeTorchWeights } from '../../src/nn/torch_weights.js';
import type { WorldFiles } from '../../src/world/files.js';
import type { ContractModel, WorldContract } from '../../src/world/types.js';
import {
  SD_CONTRACT_MODELS,
  sdContractModels,
  tokenRows,
  type SdContractModel,
  type WeightsRef,
} from '../../src/world/sd_parts.js';
import { fileSha256 } from '../real/world.js';
import { irStages, sdConfigs, SEED_OFFSET, styleConfig, type PaperScale } from './configs.js';
import type { LazySd } from './lazy_sd.js';

/**
 * StyleGAN2's architecture as python/sdd_torch/models/stylegan2.py's StyleGan2Config names it
 * (seeded weights have no file to read it from).
 */
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

/** The random models whose TS weights paper-random-tiny writes (the SD ones lazy: written one at a time). */
export interface WrittenModels {
  sd: LazySd;
  clip: Params;
  arcface: Params;
  irStages: IrStages;
  g: StyleGan2;
}

/**
 * paper-random-tiny's contract: TS's seeded weights written in PyTorch's layout into the cache
 * (prepare, once per process), so both engines compute with the same weights. SD's models are
 * made one at a time for the write, not kept: the harness of a torch run never holds them.
 */
export function writtenContract(m: WrittenModels, scale: PaperScale): WorldContract {
  let models: Record<string, ContractModel> | null = null;
  let pending: Promise<void> | null = null;
  const write = async (): Promise<void> => {
    const dir = torchWeightsDir();
    const refs: Partial<Record<SdContractModel, WeightsRef>> = {};
    for (const n of SD_CONTRACT_MODELS)
      refs[n] = await (n === 'clip'
        ? writeTorchWeights(dir, m.clip)
        : m.sd.withWeights(n, (p) => writeTorchWeights(dir, p)));
    const stylegan2 = await writeTorchWeights(dir, m.g.params, STYLEGAN2_TORCH_LAYOUT);
    const arcface = await writeTorchWeights(dir, m.arcface);
    models = {
      ...sdContractModels(m.sd.spec.scheduler, sdConfigs(scale), (n) => refs[n]!),
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
    tokenize: (texts) => tokenRows(m.sd.spec.tokenizer, texts),
    prepare: () => (pending ??= write()),
  };
}

/**
 * world paper's contract: the published files themselves (the folders' weights files or sharded
 * indexes, hashed once: fileSha256 caches), each model's config.json; the ids of one tokenizer
 * serve both the text encoder and CLIP, so the two folders' tokenizers must agree on them.
 */
export function filesContract(files: WorldFiles, sd: LazySd, clipTokenizer: ClipTokenizer): WorldContract {
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
          sd.spec.scheduler,
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
      const ids = tokenRows(sd.spec.tokenizer, texts);
      if (JSON.stringify(ids) !== JSON.stringify(tokenRows(clipTokenizer, texts))) {
        throw new UserError(
          `engine: torch: ${files.sd}/tokenizer and ${files.clip} tokenize ${JSON.stringify(texts)} differently; the torch engine takes one id list for both models`,
        );
      }
      return ids;
    },
  };
}
