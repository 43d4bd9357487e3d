/**
 * The world parts built from Stable Diffusion, CLIP, pytorch-fid's Inception and ArcFace, shared by
 * every world that uses those models (real, paper, paper-random): whether their weights came from
 * files or were created at random, the interfaces SDD and the baselines see are the same.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../nn/params.js';
import type { ContractModel, DiffusionModels, IdentityModel, ImageTextModel, World } from './types.js';
import type { Clip } from '../nn/clip.js';
import { clipImageEmbeds, clipTextEmbeds, clipTextHidden, eosPositions } from '../nn/clip.js';
import { CLIP_CONTEXT, type ClipTokenizer } from '../nn/clip_tokenizer.js';
import { INCEPTION_SIZE, inceptionPool3 } from '../nn/inception_fid.js';
import { IR_SE50_STAGES, idEmbed, type IrStages } from '../nn/arcface.js';
import type { UNet } from '../diffusion/models/sd_unet.js';
import { unetForward } from '../diffusion/models/sd_unet.js';
import type { Vae } from '../diffusion/models/sd_vae.js';
import { vaeDecode, vaeEncodeMoments } from '../diffusion/models/sd_vae.js';
import type { ModelScheduler } from '../diffusion/schedulers/config.js';
import { epsFromV } from '../diffusion/schedulers/config.js';
import { alphasCumprod } from '../diffusion/schedulers/schedule.js';

/** CLIP's image normalisation (transformers' CLIPImageProcessor image_mean / image_std). */
const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/** What diffusionOf needs of a Stable Diffusion checkpoint (loaded, or random at full size). */
export interface SdParts {
  unet: UNet;
  vae: Vae;
  textEncoder: Clip;
  tokenizer: ClipTokenizer;
  scheduler: ModelScheduler;
}

/** The pixel size SD works at: the UNet's sample size × the VAE's downsampling. */
export function sdImageSize(sd: SdParts): number {
  return sd.unet.config.sampleSize * 2 ** (sd.vae.config.blockOutChannels.length - 1);
}

function tokenIds(tok: ClipTokenizer, texts: string[]): tf.Tensor2D {
  return tf.tensor2d(tok.tokenize(texts), [texts.length, CLIP_CONTEXT], 'int32');
}

/** The latent diffusion supervisor: VAE (x in [0, 1] ↔ scaled latents), SD's text condition and ε. */
export function diffusionOf(sd: SdParts): DiffusionModels {
  const { unet, vae } = sd;
  const schedule = sd.scheduler.scheduler;
  const alphas = alphasCumprod(schedule);
  return {
    scheduler: schedule,
    alphasCumprod: alphas,
    latentShape: [unet.config.sampleSize, unet.config.sampleSize, vae.config.latentChannels],
    encode(x, noise) {
      const { mean, logvar } = vaeEncodeMoments(vae.params, vae.config, tf.sub(tf.mul(x, 2), 1) as tf.Tensor4D);
      const z = noise ? tf.add(mean, tf.mul(tf.exp(tf.mul(logvar, 0.5)), noise)) : mean;
      return tf.mul(z, vae.config.scalingFactor) as tf.Tensor4D;
    },
    decode: (z) =>
      tf.clipByValue(
        tf.add(tf.mul(vaeDecode(vae.params, vae.config, tf.div(z, vae.config.scalingFactor) as tf.Tensor4D), 0.5), 0.5),
        0,
        1,
      ) as tf.Tensor4D,
    async textCondition(texts) {
      const hidden = tf.tidy(() =>
        clipTextHidden(sd.textEncoder.params, sd.textEncoder.config.text, tokenIds(sd.tokenizer, texts)),
      );
      const context = (await hidden.data()) as Float32Array;
      hidden.dispose();
      // SD v1 attends to all 77 positions, padding included: the mask is all ones.
      return {
        context,
        mask: new Float32Array(texts.length * CLIP_CONTEXT).fill(1),
        tokens: CLIP_CONTEXT,
        dim: sd.textEncoder.config.text.hidden,
      };
    },
    eps(zt, t, context) {
      const out = unetForward(unet.params, unet.config, zt, t, context);
      if (sd.scheduler.prediction === 'epsilon') return out;
      const ab = tf.gather(tf.tensor1d(Float32Array.from(alphas)), tf.cast(t, 'int32')) as tf.Tensor1D;
      return epsFromV(out, zt, ab);
    },
  };
}

/** The SD and CLIP models a torch twin loads (python/sdd_torch/worlds/paper.py). */
export const SD_CONTRACT_MODELS = ['unet', 'vae', 'text_encoder', 'clip'] as const;
export type SdContractModel = (typeof SD_CONTRACT_MODELS)[number];
/** A model's weights: a file (absolute) and its SHA-256, or a seed (the twin makes its own random weights). */
export type WeightsRef = { weights: string; sha256: string } | { seed: number };

/**
 * WorldContract.models entries for SD's UNet, VAE and text encoder and the CLIP model: each one's
 * config.json object, and on the UNet the prediction type (with ᾱ_t under v-prediction: the twin
 * turns v into ε with the same values as diffusionOf).
 */
export function sdContractModels(
  scheduler: ModelScheduler,
  configs: Record<SdContractModel, object>,
  weightsOf: (name: SdContractModel) => WeightsRef,
): Record<SdContractModel, ContractModel> {
  const prediction = scheduler.prediction;
  const unetExtra = {
    prediction_type: prediction,
    ...(prediction === 'epsilon'
      ? {}
      : { alphas_cumprod: Array.from(Float32Array.from(alphasCumprod(scheduler.scheduler))) }),
  };
  const entry = (name: SdContractModel): ContractModel => {
    const ref = weightsOf(name);
    const architecture = {
      config: configs[name],
      ...('seed' in ref ? { seed: ref.seed } : {}),
      ...(name === 'unet' ? unetExtra : {}),
    };
    return 'seed' in ref
      ? { weights: null, sha256: null, architecture }
      : { weights: ref.weights, sha256: ref.sha256, architecture };
  };
  return Object.fromEntries(SD_CONTRACT_MODELS.map((n) => [n, entry(n)])) as Record<SdContractModel, ContractModel>;
}

/** Our tokenizer's ids of each text, one row of CLIP_CONTEXT per text (padded as the text encoder reads them). */
export function tokenRows(tok: ClipTokenizer, texts: string[]): number[][] {
  const ids = tok.tokenize(texts);
  return texts.map((_, i) => Array.from(ids.subarray(i * CLIP_CONTEXT, (i + 1) * CLIP_CONTEXT)));
}

/** CLIP similarity with a CLIPModel (both towers). */
export function clipOf(clip: Clip, tokenizer: ClipTokenizer, id: string): ImageTextModel {
  const vision = clip.config.vision;
  if (!vision) throw new Error('clipOf: a CLIPModel with a vision tower is needed');
  return {
    id,
    preprocess: `bilinear resize to ${vision.imageSize}² (half-pixel centres, no antialias), CLIP mean/std; transformers' CLIPImageProcessor resizes bicubic with antialias`,
    imageEmbed(x) {
      // Bilinear to the tower's size, then CLIP's normalisation. transformers' processor resizes
      // bicubic with antialiasing: scores are close to, not bit-equal with, its pipeline.
      const sized =
        x.shape[1] === vision.imageSize
          ? x
          : tf.image.resizeBilinear(x, [vision.imageSize, vision.imageSize], false, true);
      const normed = tf.div(tf.sub(sized, tf.tensor1d(CLIP_MEAN)), tf.tensor1d(CLIP_STD)) as tf.Tensor4D;
      return clipImageEmbeds(clip.params, clip.config, normed);
    },
    // No gradient flows into the text tower: its intermediates are released here (as toyfaces' does).
    textEmbed(texts) {
      const ids = tokenizer.tokenize(texts);
      return tf.tidy(() =>
        clipTextEmbeds(
          clip.params,
          clip.config,
          tf.tensor2d(ids, [texts.length, CLIP_CONTEXT], 'int32'),
          eosPositions(clip.config.text, ids, CLIP_CONTEXT),
        ),
      );
    },
  };
}

/** Identity similarity and SD's ID loss as StyleCLIP and e4e compute them (ArcFace IR-SE50, their crop). */
export function arcfaceOf(params: Params, id: string, stages: IrStages = IR_SE50_STAGES): IdentityModel {
  return { id, embed: (x) => idEmbed(params, tf.sub(tf.mul(x, 2), 1) as tf.Tensor4D, stages) };
}

/** pytorch-fid's pool3 features of world images resized to 299². */
export function inceptionFidOf(params: Params, imageSize: number, id: string): World['fid'] {
  return {
    id,
    resize: `bilinear ${imageSize}² → ${INCEPTION_SIZE}² (half-pixel centres, no antialias: pytorch-fid's F.interpolate)`,
    features: (x) =>
      inceptionPool3(
        params,
        x.shape[1] === INCEPTION_SIZE ? x : tf.image.resizeBilinear(x, [INCEPTION_SIZE, INCEPTION_SIZE], false, true),
      ),
  };
}
