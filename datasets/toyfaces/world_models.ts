/**
 * The toyfaces world behind the method-facing World interface (src/world/types.ts): the zoo's
 * generator/encoder, VAE + latent U-Net + mini-CLIP text encoder, identity net and feature-net
 * heads, each loaded from its shipped, hash-checked weights, strictly (zoo/store.ts strictParams):
 * a file lacking one of the model's tensors, or holding others, is refused by name.
 */
import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import type {
  AttributeJudge,
  DiffusionModels,
  ImageTextModel,
  StyleModels,
  World,
  WorldDef,
} from '../../src/world/types.js';
import { condUnet } from '../../src/diffusion/models/cond_unet.js';
import { alphasCumprod } from '../../src/diffusion/schedulers/schedule.js';
import { SD_SCHEDULER } from '../../src/diffusion/schedulers/ddim.js';
import { UserError } from '../../src/errors.js';
import { ATTRIBUTE_NAMES, valuesOf } from './attributes.js';
import { EDIT_PROMPTS } from './captions.js';
import { editSet, face, renderBatch } from './world.js';
import { loadParams, modelDir, readCard, zooModels } from './zoo/store.js';
import { diffaeEps, semanticEncode, type DiffAeConfig } from './models/diffae.js';
import type { Params } from '../../src/nn/params.js';
import type { DiffAeModels } from '../../src/world/types.js';
import { clipImageEmbed, clipTextEmbed, textCondition } from './models/clip.js';
import { encode as styleEncode, generate, levelGroups, levelsOf } from './models/stylegen.js';
import { vaeDecode, vaeEncode } from './models/vae.js';
import { idnetEmbed } from './models/idnet.js';
import { featnetFeatures, featnetLogits } from './models/featnet.js';
import { configOf } from './models/configs.js';
import { MAX_TOKENS, tokenize, tokenizeBatch } from './tokenizer.js';
import { FEATNET_EXTRACTOR } from './extractor.js';

const SIZE = 32;

const WORLD_MODELS = ['stylegen', 'vae', 'clip', 'ldm', 'idnet', 'featnet', 'diffae'] as const;

/**
 * The weights' SHA-256 of every model the world loads, from the cards alone (no weights read):
 * what a run records as `models`, and what tells a finished run from one made with other weights.
 */
function toyfacesFingerprint(): Record<string, string> {
  const shipped = new Set(zooModels());
  return Object.fromEntries(
    WORLD_MODELS.filter((n) => n !== 'diffae' || shipped.has(n)).map((n) => [n, readCard(n).weights.sha256]),
  );
}

type Loaded = ReturnType<typeof loadParams>;

export function loadToyfacesWorld(): World {
  const stylegen = loadParams('stylegen');
  const vae = loadParams('vae');
  const clip = loadParams('clip');
  const ldm = loadParams('ldm');
  const idnet = loadParams('idnet');
  const featnet = loadParams('featnet');
  const diffae = zooModels().includes('diffae') ? loadParams('diffae') : null;
  const all = { stylegen, vae, clip, ldm, idnet, featnet, ...(diffae ? { diffae } : {}) };
  const short = (m: Loaded) => m.card.weights.sha256.slice(0, 12);
  const fc = configOf('featnet', featnet.card.architecture);
  const ic = configOf('idnet', idnet.card.architecture);
  return {
    name: 'toyfaces',
    // = toyfacesFingerprint()
    fingerprint: Object.fromEntries(Object.entries(all).map(([k, v]) => [k, v.card.weights.sha256])),
    imageSize: SIZE,
    prompts: EDIT_PROMPTS,
    sources,
    trainImages: (n) =>
      renderBatch(
        Array.from({ length: n }, (_, i) => face('train', i)),
        SIZE,
      ),
    style: styleModels(stylegen),
    diffusion: diffusionModels(vae, clip, ldm),
    clip: clipModel(clip),
    identity: { id: `toyfaces-idnet@${short(idnet)}`, embed: (x) => idnetEmbed(idnet.params, x, ic) },
    judge: judge(featnet),
    fid: { id: `toyfaces-featnet@${short(featnet)}`, features: (x) => featnetFeatures(featnet.params, x, fc) },
    diffae: diffae ? diffaeModels(diffae.params, configOf('diffae', diffae.card.architecture)) : undefined,
    contract: {
      models: Object.fromEntries(
        Object.entries(all).map(([k, v]) => [
          k,
          {
            weights: join(modelDir(k), v.card.weights.file),
            sha256: v.card.weights.sha256,
            architecture: v.card.architecture,
          },
        ]),
      ),
      tokenize: (texts) => texts.map((t) => Array.from(tokenize(t))),
    },
    dispose() {
      for (const m of Object.values(all)) m.params.dispose();
    },
  };
}

/** The first m evaluation faces showing the prompt's source value. */
function sources(promptId: string, m: number): Float32Array {
  const prompt = EDIT_PROMPTS.find((p) => p.id === promptId);
  if (!prompt)
    throw new UserError(
      `toyfaces has no edit prompt '${promptId}' (have: ${EDIT_PROMPTS.map((p) => p.id).join(', ')})`,
    );
  return renderBatch(
    editSet(prompt, m).map((e) => e.source),
    SIZE,
  );
}

function styleModels(stylegen: Loaded): StyleModels {
  const sg = configOf('stylegen', stylegen.card.architecture);
  return {
    levels: levelsOf(sg),
    dim: sg.wdim,
    groups: levelGroups(sg),
    generate: (w) => generate(stylegen.params, w, sg),
    encode: (x) => styleEncode(stylegen.params, x, sg).wplus,
  };
}

function diffusionModels(vae: Loaded, clip: Loaded, ldm: Loaded): DiffusionModels {
  const vc = configOf('vae', vae.card.architecture);
  const cc = configOf('clip', clip.card.architecture);
  const lc = configOf('ldm', ldm.card.architecture);
  const scale = vc.scaleFactor!;
  return {
    // The zoo's ldm and diffae were trained and are sampled with Stable Diffusion's setting.
    scheduler: SD_SCHEDULER,
    alphasCumprod: alphasCumprod(SD_SCHEDULER),
    latentShape: [lc.latentSize, lc.latentSize, lc.latentChannels],
    encode(x, noise) {
      const { mean, logvar } = vaeEncode(vae.params, x, vc);
      const z = noise ? tf.add(mean, tf.mul(tf.exp(tf.mul(logvar, 0.5)), noise)) : mean;
      return tf.mul(z, scale) as tf.Tensor4D;
    },
    decode: (z) => vaeDecode(vae.params, tf.div(z, scale) as tf.Tensor4D, vc),
    async textCondition(texts) {
      const c = await textCondition(clip.params, cc, tokenizeBatch(texts), texts.length);
      return { ...c, tokens: MAX_TOKENS, dim: cc.textWidth };
    },
    eps: (zt, t, context, mask) => condUnet(ldm.params, zt, t, context, mask, lc),
  };
}

function clipModel(clip: Loaded): ImageTextModel {
  const cc = configOf('clip', clip.card.architecture);
  const ids = (texts: string[]) => tf.tensor2d(tokenizeBatch(texts), [texts.length, MAX_TOKENS]);
  return {
    id: `toyfaces-clip@${clip.card.weights.sha256.slice(0, 12)}`,
    imageEmbed: (x) => clipImageEmbed(clip.params, x, cc),
    textEmbed: (texts) => tf.tidy(() => clipTextEmbed(clip.params, ids(texts), cc)),
  };
}

/** Ground-truth attribute heads: the attribute net's argmax per attribute. */
function judge(featnet: Loaded): AttributeJudge {
  const fc = configOf('featnet', featnet.card.architecture);
  return {
    names: [...ATTRIBUTE_NAMES],
    valuesOf: (name) => valuesOf(name as never),
    async predict(x) {
      const out = tf.tidy(() => {
        const logits = featnetLogits(featnet.params, featnetFeatures(featnet.params, x, fc));
        return tf.stack(
          logits.map((l) => tf.argMax(l, 1)),
          1,
        );
      });
      try {
        return Int32Array.from(await out.data());
      } finally {
        out.dispose();
      }
    },
  };
}

/**
 * DiffAE over the zoo weights. The classifiers are softmax regressions, so the direction that
 * raises `target` over `source` is the difference of their weight columns (over the mean of the
 * other columns when no source is named), normalised.
 */
function diffaeModels(p: Params, cfg: DiffAeConfig): DiffAeModels {
  const mean = p.vars.get('sem.mean')!;
  const std = p.vars.get('sem.std')!;
  return {
    scheduler: SD_SCHEDULER,
    encode: (x) => semanticEncode(p, x, cfg),
    eps: (zt, t, zsem) => diffaeEps(p, zt, t, zsem, cfg),
    normalise: (z) => tf.div(tf.sub(z, mean), std) as tf.Tensor2D,
    denormalise: (z) => tf.add(tf.mul(z, std), mean) as tf.Tensor2D,
    direction(attribute, target, source) {
      return tf.tidy(() => {
        const values = valuesOf(attribute as never);
        const w = p.vars.get(`cls.${attribute}.weight`);
        if (!w) throw new UserError(`diffae has no classifier for attribute '${attribute}'`);
        const col = (v: string) => tf.squeeze(tf.slice(w, [0, values.indexOf(v)], [-1, 1]), [1]);
        const others = values.filter((v) => v !== target);
        const base = source ? col(source) : tf.mean(tf.stack(others.map(col)), 0);
        const d = tf.sub(col(target), base);
        return tf.div(d, tf.norm(d)) as tf.Tensor1D;
      });
    },
  };
}

export const toyfacesWorld: WorldDef = {
  name: 'toyfaces',
  describe: 'the embedded world: procedural 32² faces and the shipped zoo (no download, no GPU)',
  extractors: { 'toyfaces-featnet': FEATNET_EXTRACTOR },
  fingerprint: toyfacesFingerprint,
  load: loadToyfacesWorld,
};
