/**
 * Training and evaluation of the latent diffusion U-Net (datasets/toyfaces/models/ldm.ts). Needs
 * the shipped VAE (latents) and mini-CLIP (text encoder); the card records both weights' hashes.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../../src/nn/params.js';
import { condUnet } from '../../../src/diffusion/models/cond_unet.js';
import { DdimScheduler, DDIM_SD } from '../../../src/diffusion/schedulers/ddim.js';
import { alphasCumprod, SD_SCHEDULE } from '../../../src/diffusion/schedulers/schedule.js';
import { repeatCondition, sampleCfg, type Condition } from '../../../src/diffusion/pipelines/sample.js';
import type { WorkerPool } from '../../../src/backend/pool.js';
import { Rng } from '../../../src/util/rng.js';
import { ATTRIBUTE_NAMES, EDITABLE_NAMES, valuesOf, type EditableName } from '../attributes.js';
import { caption, partialCaption } from '../captions.js';
import { textCondition, type ClipConfig } from '../models/clip.js';
import { featnetFeatures, featnetLogits, type FeatNetConfig } from '../models/featnet.js';
import { LDM_DEFAULT, ldmTargetWidth, type LdmConfig } from '../models/ldm.js';
import { vaeDecode } from '../models/vae.js';
import { configOf } from '../models/configs.js';
import { MAX_TOKENS, tokenizeBatch } from '../tokenizer.js';
import { loadParams, readCard } from '../zoo/store.js';
import { attributesOf, zeroShotPrompt } from './clip.js';
import { scaledLatents } from './vae.js';
import { readBatches, writeNoiseDraw, type TrainData, type TrainSettings, type ZooTrainSpec } from './common.js';

/** The frozen models the U-Net is trained against, loaded from the zoo. */
function frozen() {
  const vae = loadParams('vae');
  const clip = loadParams('clip');
  const scale = configOf('vae', vae.card.architecture).scaleFactor;
  if (!scale) throw new Error('zoo/vae/card.json has no scaleFactor');
  return {
    vae,
    clip,
    scale,
    clipCfg: configOf('clip', clip.card.architecture),
    vaeCfg: configOf('vae', vae.card.architecture),
  };
}

async function textConditionOf(clip: Params, cfg: ClipConfig, texts: string[]): Promise<Condition> {
  const { context, mask } = await textCondition(clip, cfg, tokenizeBatch(texts), texts.length);
  return { context, mask, tokens: MAX_TOKENS, dim: cfg.textWidth };
}

async function ldmData(o: TrainSettings, pool: WorkerPool, log: (s: string) => void): Promise<TrainData> {
  // Only the text encoder is needed here: scaledLatents loads the VAE itself.
  const clip = loadParams('clip');
  const f = { clip, clipCfg: configOf('clip', clip.card.architecture) };
  const { set, latents } = await scaledLatents(o, pool, log);
  const cfg = LDM_DEFAULT;
  const per = cfg.latentSize ** 2 * cfg.latentChannels;
  const alphas = alphasCumprod(SD_SCHEDULE);
  const width = ldmTargetWidth(cfg);
  return {
    n: set.n,
    async batch(idx, rng) {
      const x = new Float32Array(idx.length * per);
      const y = new Float32Array(idx.length * width);
      const texts = idx.map((k) => {
        const a = attributesOf(set, k);
        const u = rng.next();
        return u < cfg.condDrop ? '' : rng.next() < cfg.fullCaption ? caption(a) : partialCaption(a, rng);
      });
      // The captions are drawn before the noise, from the same generator, as always.
      const cond = await textConditionOf(f.clip.params, f.clipCfg, texts);
      idx.forEach((k, i) => {
        x.set(latents.subarray(k * per, (k + 1) * per), i * per);
        const row = i * width;
        writeNoiseDraw(y, row, per, rng, alphas);
        const c = cfg.contextTokens * cfg.contextDim;
        y.set(cond.context.subarray(i * c, (i + 1) * c), row + per + 3);
        y.set(cond.mask.subarray(i * cfg.contextTokens, (i + 1) * cfg.contextTokens), row + per + 3 + c);
      });
      return {
        x,
        xShape: [idx.length, cfg.latentSize, cfg.latentSize, cfg.latentChannels],
        y,
        yShape: [idx.length, width],
      };
    },
  };
}

export interface LdmEvalSettings {
  /** Spread evenly over the 16 prompts (the card's evalN). */
  samples: number;
  guidance: number;
  steps: number;
  seed: number;
}

const LDM_EVAL: Omit<LdmEvalSettings, 'samples'> = { guidance: 7.5, steps: 50, seed: 0 };

/**
 * CFG samples for "a face with <phrase>" for every editable attribute value, decoded by the VAE
 * and judged by the feature net's heads: the share showing the prompted value.
 */
async function evalLdm(params: Params, cfg: LdmConfig, e: LdmEvalSettings): Promise<Record<string, unknown>> {
  const f = frozen();
  const judge = loadParams('featnet');
  const judgeCfg = configOf('featnet', judge.card.architecture);
  const scheduler = new DdimScheduler({ ...DDIM_SD, steps: e.steps });
  const rng = new Rng(e.seed);
  const prompts = EDITABLE_NAMES.reduce((n, name) => n + valuesOf(name).length, 0);
  const n = Math.max(1, Math.ceil(e.samples / prompts));
  const latentShape: [number, number, number] = [cfg.latentSize, cfg.latentSize, cfg.latentChannels];
  // Per prompt (zoo order): the judged value index of each of its n samples, on the device until
  // the one read after the last prompt.
  const preds: tf.Tensor1D[] = [];
  let rates: ReturnType<typeof promptRates>;
  try {
    const uncond1 = await textConditionOf(f.clip.params, f.clipCfg, ['']);
    for (const name of EDITABLE_NAMES) {
      for (const value of valuesOf(name)) {
        const text = zeroShotPrompt(name as EditableName, value);
        const z = await sampleCfg({
          model: (zt, t, ctx, mask) => condUnet(params, zt, t, ctx, mask, cfg),
          scheduler,
          cond: await textConditionOf(f.clip.params, f.clipCfg, Array(n).fill(text)),
          uncond: repeatCondition(uncond1, n),
          guidance: e.guidance,
          shape: latentShape,
          rng,
        });
        const head = ATTRIBUTE_NAMES.indexOf(name);
        preds.push(tf.tidy(() => judgedValues(f, judge.params, judgeCfg, tf.tensor4d(z, [n, ...latentShape]), head)));
      }
    }
    rates = promptRates(await readBatches<Int32Array>(preds.splice(0)), n);
  } finally {
    tf.dispose(preds);
    judge.params.dispose();
    f.vae.params.dispose();
    f.clip.params.dispose();
  }
  return {
    eval: {
      prompts: 'a face with <phrase>, every editable value',
      sampler: `DDIM ${e.steps} steps, eta 0`,
      judged_by: 'featnet heads',
      samples_per_prompt: n,
      ...e,
    },
    prompted_attribute_rate: rates.hits / rates.total,
    per_attribute: rates.perAttribute,
    per_prompt: rates.perPrompt,
  };
}

/** The value index the feature net's head `head` judges each VAE-decoded latent to show. */
function judgedValues(
  f: ReturnType<typeof frozen>,
  judge: Params,
  judgeCfg: FeatNetConfig,
  z: tf.Tensor4D,
  head: number,
): tf.Tensor1D {
  const zt = tf.div(z, f.scale) as tf.Tensor4D;
  const img = tf.clipByValue(vaeDecode(f.vae.params, zt, f.vaeCfg), 0, 1) as tf.Tensor4D;
  return tf.argMax(featnetLogits(judge, featnetFeatures(judge, img, judgeCfg))[head], 1) as tf.Tensor1D;
}

/** The share of each prompt's n samples (in zoo order in `judged`) that show the prompted value. */
function promptRates(judged: Int32Array, n: number) {
  const perPrompt: Record<string, number> = {};
  const perAttribute: Record<string, number> = {};
  let hits = 0;
  let total = 0;
  let at = 0;
  for (const name of EDITABLE_NAMES) {
    const values = valuesOf(name);
    let attrHits = 0;
    for (const value of values) {
      const text = zeroShotPrompt(name as EditableName, value);
      const ok = [...judged.subarray(at, at + n)].filter((k) => values[k] === value).length;
      at += n;
      perPrompt[text] = ok / n;
      attrHits += ok;
      hits += ok;
      total += n;
    }
    perAttribute[name] = attrHits / (values.length * n);
  }
  return { hits, total, perPrompt, perAttribute };
}

export const LDM_SPEC: ZooTrainSpec<'ldm'> = {
  name: 'ldm',
  model: 'ldm',
  config: LDM_DEFAULT,
  role: 'latent diffusion U-Net ε(z_t, t, text) with classifier-free guidance (the Stable Diffusion role)',
  needs: ['vae', 'clip', 'featnet'],
  version: 1,
  settings: { steps: 2500, batch: 32, lr: 1.5e-3, seed: 0, trainN: 24_000, evalN: 256, size: 32, checkpointEvery: 200 },
  data: (pool, o, log) => ldmData(o, pool, log),
  async finalize() {
    return {
      vae: readCard('vae').weights.sha256,
      text_encoder: { model: 'clip', sha256: readCard('clip').weights.sha256, hidden_states: 'last, layer-normed' },
      schedule: SD_SCHEDULE,
      prediction: 'epsilon',
    };
  },
  async evaluate(params, _pool, o) {
    return await evalLdm(params, LDM_DEFAULT, { ...LDM_EVAL, samples: o.evalN });
  },
};
