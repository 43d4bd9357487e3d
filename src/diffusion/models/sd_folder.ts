/**
 * A Stable Diffusion v1.x checkpoint in the diffusers folder layout: model_index.json names the
 * parts (unet/, vae/, text_encoder/, tokenizer/, scheduler/), each loaded strictly from its own
 * config and safetensors weights.
 */
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { loadClip, type Clip } from '../../nn/clip.js';
import { ClipTokenizer } from '../../nn/clip_tokenizer.js';
import { readSchedulerConfig, type ModelScheduler } from '../schedulers/config.js';
import { readJsonObject } from './diffusers_config.js';
import { loadUNet, type UNet } from './sd_unet.js';
import { loadVae, type Vae } from './sd_vae.js';

/** The classes of model_index.json this loader implements, per part. */
const PARTS: Record<string, string[]> = {
  unet: ['UNet2DConditionModel'],
  vae: ['AutoencoderKL'],
  text_encoder: ['CLIPTextModel'],
  tokenizer: ['CLIPTokenizer', 'CLIPTokenizerFast'],
  scheduler: [
    'DDIMScheduler',
    'PNDMScheduler',
    'LMSDiscreteScheduler',
    'EulerDiscreteScheduler',
    'DPMSolverMultistepScheduler',
    'DDPMScheduler',
  ],
};

export interface StableDiffusion {
  dir: string;
  unet: UNet;
  vae: Vae;
  textEncoder: Clip;
  tokenizer: ClipTokenizer;
  /** The training schedule and prediction type (samplers take the schedule; DDIM runs whatever the folder's class). */
  scheduler: ModelScheduler;
  dispose(): void;
}

/** model_index.json checked: every part present with a class this loader implements. */
function checkModelIndex(dir: string): void {
  const file = join(dir, 'model_index.json');
  const index = readJsonObject(file);
  for (const [part, classes] of Object.entries(PARTS)) {
    const entry = index[part];
    const cls = Array.isArray(entry) ? String(entry[1]) : null;
    if (!cls)
      throw new UserError(
        `${file}: ${part} is missing (a Stable Diffusion folder has ${Object.keys(PARTS).join(', ')})`,
      );
    if (!classes.includes(cls)) throw new UserError(`${file}: ${part} is ${cls}; supported: ${classes.join(', ')}`);
  }
}

export function loadStableDiffusion(dir: string): StableDiffusion {
  checkModelIndex(dir);
  const scheduler = readSchedulerConfig(join(dir, 'scheduler', 'scheduler_config.json'));
  const tokenizer = ClipTokenizer.fromFolder(join(dir, 'tokenizer'));
  const textEncoder = loadClip(join(dir, 'text_encoder'));
  const loaded: { params: { dispose(): void } }[] = [textEncoder];
  try {
    if (textEncoder.config.kind !== 'CLIPTextModel')
      throw new UserError(`${join(dir, 'text_encoder', 'config.json')}: expected a CLIPTextModel`);
    const unet = loadUNet(join(dir, 'unet'));
    loaded.push(unet);
    const vae = loadVae(join(dir, 'vae'));
    loaded.push(vae);
    if (unet.config.crossAttentionDim !== textEncoder.config.text.hidden) {
      throw new UserError(
        `${dir}: unet cross_attention_dim ${unet.config.crossAttentionDim} ≠ text_encoder hidden_size ${textEncoder.config.text.hidden}`,
      );
    }
    if (unet.config.inChannels !== vae.config.latentChannels)
      throw new UserError(
        `${dir}: unet in_channels ${unet.config.inChannels} ≠ vae latent_channels ${vae.config.latentChannels}`,
      );
    return {
      dir,
      unet,
      vae,
      textEncoder,
      tokenizer,
      scheduler,
      dispose: () => loaded.forEach((m) => m.params.dispose()),
    };
  } catch (e) {
    loaded.forEach((m) => m.params.dispose());
    throw e;
  }
}
