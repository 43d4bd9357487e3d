/**
 * diffusers' AutoencoderKL (SD v1's VAE) in tfjs: encoder to the posterior mean (and log-variance),
 * decoder back to pixels, the latent scaling factor from config.json. NHWC; images in [-1, 1].
 */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../../errors.js';
import { maxBindingBytes } from '../../backend/index.js';
import { Params } from '../../nn/params.js';
import { loadVerified } from '../../nn/torch_weights.js';
import { ConfigReader, diffusersWeights } from './diffusers_config.js';
import {
  conv2d,
  downsample,
  groupNormSilu,
  resnetBlock,
  spatialSelfAttention,
  upsample,
  type NormSpec,
} from './diffusers_blocks.js';

export interface VaeConfig {
  inChannels: number;
  outChannels: number;
  latentChannels: number;
  blockOutChannels: number[];
  layersPerBlock: number;
  groups: number;
  scalingFactor: number;
  quantConv: boolean;
  postQuantConv: boolean;
  midAttention: boolean;
}

/**
 * Keys of an AutoencoderKL config.json that cannot change what this port computes, with why
 * (diffusers v0.31.0's AutoencoderKL).
 */
const VAE_IRRELEVANT: Record<string, string> = {
  sample_size: 'the tile size of tiled encoding/decoding, which is off unless enable_tiling() is called',
  force_upcast: 'whether an fp16 pipeline runs the VAE in float32; this port is float32 throughout',
};

/** config.json of an AutoencoderKL folder; settings this port does not implement are refused. */
export function parseVaeConfig(r: ConfigReader): VaeConfig {
  const blocks = r.list('block_out_channels', 'number');
  const down = r.list('down_block_types', 'string', Array(blocks.length).fill('DownEncoderBlock2D'));
  const up = r.list('up_block_types', 'string', Array(blocks.length).fill('UpDecoderBlock2D'));
  if (down.length !== blocks.length || down.some((d) => d !== 'DownEncoderBlock2D'))
    throw new UnsupportedBlocks(r.file, 'down_block_types', down);
  if (up.length !== blocks.length || up.some((d) => d !== 'UpDecoderBlock2D'))
    throw new UnsupportedBlocks(r.file, 'up_block_types', up);
  r.silu();
  r.only('shift_factor', [null], null);
  // SDXL-style pipelines normalise latents with these; SD v1/v2's never do, and this port neither.
  r.only('latents_mean', [null], null);
  r.only('latents_std', [null], null);
  r.irrelevant(VAE_IRRELEVANT);
  const groups = r.int('norm_num_groups', 32);
  for (const c of blocks)
    if (c % groups !== 0)
      throw new UnsupportedBlocks(
        r.file,
        'block_out_channels',
        blocks,
        `every width must be a multiple of norm_num_groups ${groups}`,
      );
  const config: VaeConfig = {
    inChannels: r.int('in_channels', 3),
    outChannels: r.int('out_channels', 3),
    latentChannels: r.int('latent_channels', 4),
    blockOutChannels: blocks,
    layersPerBlock: r.int('layers_per_block', 1),
    groups,
    scalingFactor: r.num('scaling_factor', 0.18215),
    quantConv: r.bool('use_quant_conv', true),
    postQuantConv: r.bool('use_post_quant_conv', true),
    midAttention: r.bool('mid_block_add_attention', true),
  };
  r.finish();
  return config;
}

class UnsupportedBlocks extends UserError {
  constructor(file: string, key: string, v: unknown, why = 'not supported') {
    super(`${file}: ${key} ${JSON.stringify(v)}: ${why}`);
  }
}

const VAE_EPS = 1e-6;

function midBlock(p: Params, n: string, x: tf.Tensor4D, c: VaeConfig, norm: NormSpec): tf.Tensor4D {
  const ch = x.shape[3];
  x = resnetBlock(p, `${n}.resnets.0`, x, ch, norm);
  if (c.midAttention) x = spatialSelfAttention(p, `${n}.attentions.0`, x, norm);
  return resnetBlock(p, `${n}.resnets.1`, x, ch, norm);
}

/**
 * Runs `f` over batch chunks small enough that every activation of one chunk fits one kernel
 * binding (webgpu: maxStorageBufferBindingSize, 2 GiB on an H200; one call elsewhere, unchanged).
 * GroupNorm, additions and the attention heads bind whole activations, so kernel-level splitting
 * cannot rescue the VAE at full resolution: a 512² decode holds 128–256 channels at 512² per image.
 * `itemBytes` bounds one item's largest activation (widest level × the largest resolution × 4).
 */
function byBatchChunks(x: tf.Tensor4D, itemBytes: number, f: (x: tf.Tensor4D) => tf.Tensor4D[]): tf.Tensor4D[] {
  const per = Math.max(1, Math.floor(maxBindingBytes() / itemBytes));
  const b = x.shape[0];
  if (b <= per) return f(x);
  const parts: tf.Tensor4D[][] = [];
  for (let s = 0; s < b; s += per) {
    const n = Math.min(per, b - s);
    parts.push(tf.tidy(() => f(tf.slice(x, [s, 0, 0, 0], [n, -1, -1, -1]))));
  }
  const out = parts[0].map((_, k) =>
    tf.concat(
      parts.map((p) => p[k]),
      0,
    ),
  );
  tf.dispose(parts);
  return out;
}

/** One item's largest activation (bytes) at resolution h × w: the widest level, bounded above. */
const itemBytes = (c: VaeConfig, h: number, w: number) => Math.max(...c.blockOutChannels) * h * w * 4;

/** The posterior's mean and log-variance [B, H/f, W/f, latent] of images [B, H, W, 3] in [-1, 1] (unscaled). */
export function vaeEncodeMoments(
  p: Params,
  c: VaeConfig,
  images: tf.Tensor4D,
): { mean: tf.Tensor4D; logvar: tf.Tensor4D } {
  const [mean, logvar] = byBatchChunks(images, itemBytes(c, images.shape[1], images.shape[2]), (x) => {
    const m = encodeMoments(p, c, x);
    return [m.mean, m.logvar];
  });
  return { mean, logvar };
}

/** Images [B, H, W, 3] (about [-1, 1]) of unscaled latents. */
export function vaeDecode(p: Params, c: VaeConfig, latents: tf.Tensor4D): tf.Tensor4D {
  const f = 2 ** (c.blockOutChannels.length - 1);
  const bytes = itemBytes(c, latents.shape[1] * f, latents.shape[2] * f);
  return byBatchChunks(latents, bytes, (z) => [decode(p, c, z)])[0];
}

function encodeMoments(p: Params, c: VaeConfig, images: tf.Tensor4D): { mean: tf.Tensor4D; logvar: tf.Tensor4D } {
  const norm = { groups: c.groups, eps: VAE_EPS };
  let x = conv2d(p, 'encoder.conv_in', images, c.blockOutChannels[0]);
  c.blockOutChannels.forEach((ch, i) => {
    for (let j = 0; j < c.layersPerBlock; j++) x = resnetBlock(p, `encoder.down_blocks.${i}.resnets.${j}`, x, ch, norm);
    if (i < c.blockOutChannels.length - 1) x = downsample(p, `encoder.down_blocks.${i}.downsamplers.0`, x, 0);
  });
  x = midBlock(p, 'encoder.mid_block', x, c, norm);
  x = conv2d(
    p,
    'encoder.conv_out',
    groupNormSilu(p, 'encoder.conv_norm_out', x, c.groups, VAE_EPS),
    2 * c.latentChannels,
  );
  if (c.quantConv) x = conv2d(p, 'quant_conv', x, 2 * c.latentChannels, 1);
  const [mean, logvar] = tf.split(x, 2, 3) as [tf.Tensor4D, tf.Tensor4D];
  return { mean, logvar: tf.clipByValue(logvar, -30, 20) };
}

function decode(p: Params, c: VaeConfig, latents: tf.Tensor4D): tf.Tensor4D {
  const norm = { groups: c.groups, eps: VAE_EPS };
  let z = latents;
  if (c.postQuantConv) z = conv2d(p, 'post_quant_conv', z, c.latentChannels, 1);
  const rev = [...c.blockOutChannels].reverse();
  let x = conv2d(p, 'decoder.conv_in', z, rev[0]);
  x = midBlock(p, 'decoder.mid_block', x, c, norm);
  rev.forEach((ch, i) => {
    for (let j = 0; j <= c.layersPerBlock; j++) x = resnetBlock(p, `decoder.up_blocks.${i}.resnets.${j}`, x, ch, norm);
    if (i < rev.length - 1) x = upsample(p, `decoder.up_blocks.${i}.upsamplers.0`, x);
  });
  return conv2d(p, 'decoder.conv_out', groupNormSilu(p, 'decoder.conv_norm_out', x, c.groups, VAE_EPS), c.outChannels);
}

/** Older diffusers VAEs name the mid-block attention query/key/value/proj_attn; the same tensors. */
function vaeRename(name: string): string {
  return name.replace(
    /\.attentions\.(\d+)\.(query|key|value|proj_attn)\./,
    (_, i: string, w: string) =>
      `.attentions.${i}.${{ query: 'to_q', key: 'to_k', value: 'to_v', proj_attn: 'to_out.0' }[w]}.`,
  );
}

export interface Vae {
  config: VaeConfig;
  params: Params;
  /** pixels [-1, 1] → scaled latents (posterior mean × scaling factor), as SD's pipelines encode. */
  encode(images: tf.Tensor4D): tf.Tensor4D;
  /** scaled latents → pixels about [-1, 1]. */
  decode(latents: tf.Tensor4D): tf.Tensor4D;
}

function vaeFrom(config: VaeConfig, params: Params): Vae {
  return {
    config,
    params,
    encode: (images) => tf.mul(vaeEncodeMoments(params, config, images).mean, config.scalingFactor) as tf.Tensor4D,
    decode: (latents) => vaeDecode(params, config, tf.div(latents, config.scalingFactor) as tf.Tensor4D),
  };
}

/** A diffusers `vae/` folder, loaded strictly. */
export function loadVae(dir: string): Vae {
  const config = parseVaeConfig(ConfigReader.of(dir));
  return vaeFrom(
    config,
    loadVerified(diffusersWeights(dir), (p) => touchVae(p, config), { rename: vaeRename }),
  );
}

/** Encoder and decoder on the smallest input: reads every parameter once. */
function touchVae(p: Params, config: VaeConfig): tf.Tensor4D {
  const f = 2 ** (config.blockOutChannels.length - 1);
  return vaeDecode(p, config, vaeEncodeMoments(p, config, tf.zeros([1, f, f, config.inChannels])).mean);
}

/** The architecture of a config with seeded random weights (no file). */
export function randomVae(config: VaeConfig, seed: number): Vae {
  return vaeFrom(
    config,
    Params.created(seed, (p) => touchVae(p, config)),
  );
}
