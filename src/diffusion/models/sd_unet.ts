/**
 * diffusers' UNet2DConditionModel (Stable Diffusion v1/v2's noise predictor) in tfjs, configured
 * from its config.json: CrossAttnDownBlock2D / DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D /
 * CrossAttnUpBlock2D with skip concatenation, sinusoidal timestep embedding. NHWC latents.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../../errors.js';
import { Params } from '../../nn/params.js';
import { torchLinear } from '../../nn/attention.js';
import { loadVerified } from '../../nn/torch_weights.js';
import { ConfigReader, diffusersWeights } from './diffusers_config.js';
import {
  conv2d,
  downsample,
  groupNormSilu,
  resnetBlock,
  silu,
  transformer2d,
  upsample,
  type NormSpec,
} from './diffusers_blocks.js';

type DownType = 'CrossAttnDownBlock2D' | 'DownBlock2D';
type UpType = 'CrossAttnUpBlock2D' | 'UpBlock2D';

/** diffusers' get_activation names (it lower-cases them); swish and silu are the same function. */
export type Activation = 'silu' | 'swish' | 'mish' | 'gelu' | 'relu';
const ACTIVATIONS: Activation[] = ['silu', 'swish', 'mish', 'gelu', 'relu'];

export interface UNetConfig {
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];
  down: DownType[];
  up: UpType[];
  layersPerBlock: number;
  groups: number;
  eps: number;
  crossAttentionDim: number;
  /** Heads per down block (diffusers reads attention_head_dim as the head count when num_attention_heads is unset). */
  heads: number[];
  transformerLayers: number[];
  linearProjection: boolean;
  flipSinToCos: boolean;
  freqShift: number;
  downsamplePadding: 0 | 1;
  sampleSize: number;
  /** center_input_sample: the latents enter as 2x − 1. */
  centerInput: boolean;
  /** time_embedding_dim: the width of the time embedding (default 4 × the first block's). */
  timeEmbedDim: number;
  /** timestep_post_act: after the time embedding's linear_2 (null: none). */
  timestepPostAct: Activation | null;
  /** time_embedding_act_fn: once on the embedding, before any block uses it (null: none). */
  timeEmbeddingAct: Activation | null;
}

/**
 * Keys of a UNet2DConditionModel config.json that cannot change what this port computes, with why
 * (diffusers v0.31.0's UNet2DConditionModel.__init__ and get_down/mid/up_block).
 */
const UNET_IRRELEVANT: Record<string, string> = {
  dropout: 'the identity at inference',
  addition_time_embed_dim: 'read only by addition_embed_type "text_time" (refused)',
  addition_embed_type_num_heads: 'read only by addition_embed_type "text" (refused)',
  projection_class_embeddings_input_dim:
    'read only by class_embed_type "projection" and addition_embed_type "text_time" (both refused)',
  resnet_skip_time_act: 'passed only to the ResnetDownsample/ResnetUpsample/SimpleCrossAttn block types (refused)',
  resnet_out_scale_factor: 'passed only to the ResnetDownsample/ResnetUpsample/SimpleCrossAttn block types (refused)',
  cross_attention_norm: 'passed only to the SimpleCrossAttn block types (refused)',
  mid_block_only_cross_attention: 'read only by UNetMidBlock2DSimpleCrossAttn (refused)',
};

/** An optional activation key: null (none) or one of diffusers' names, any case. */
function optionalActivation(r: ConfigReader, key: string): Activation | null {
  const v = r.value(key, null);
  if (v === null) return null;
  const name = typeof v === 'string' ? v.toLowerCase() : v;
  if (!ACTIVATIONS.includes(name as Activation))
    throw new UserError(
      `${r.file}: ${key} ${JSON.stringify(v)} is not supported (supported: null, ${ACTIVATIONS.join(', ')})`,
    );
  return name as Activation;
}

/** The settings this port implements only at their diffusers default: anything else is refused. */
function refuseUnimplemented(r: ConfigReader): void {
  r.only('mid_block_type', ['UNetMidBlock2DCrossAttn'], 'UNetMidBlock2DCrossAttn');
  r.silu();
  r.only('only_cross_attention', [false], false);
  r.only('dual_cross_attention', [false], false);
  r.only('upcast_attention', [false, true], false); // float32 throughout: upcasting changes nothing
  r.only('class_embed_type', [null], null);
  r.only('num_class_embeds', [null], null);
  r.only('class_embeddings_concat', [false], false);
  r.only('addition_embed_type', [null], null);
  r.only('resnet_time_scale_shift', ['default'], 'default');
  r.only('time_embedding_type', ['positional'], 'positional');
  r.only('conv_in_kernel', [3], 3);
  r.only('conv_out_kernel', [3], 3);
  r.only('mid_block_scale_factor', [1], 1);
  r.only('time_cond_proj_dim', [null], null);
  r.only('encoder_hid_dim', [null], null);
  r.only('encoder_hid_dim_type', [null], null);
  r.only('reverse_transformer_layers_per_block', [null], null);
  r.only('attention_type', ['default'], 'default');
  r.irrelevant(UNET_IRRELEVANT);
}

/** Heads per block: num_attention_heads when set, else attention_head_dim (diffusers' naming slip). */
function headCounts(r: ConfigReader, blocks: number[]): number[] {
  const n = blocks.length;
  let heads: number[];
  if (r.value('num_attention_heads', null) === null) heads = r.perBlock('attention_head_dim', n, 8);
  else {
    heads = r.perBlock('num_attention_heads', n, 8);
    r.irrelevant({
      attention_head_dim:
        'the cross-attention blocks take their width per head from num_attention_heads when it is set',
    });
  }
  blocks.forEach((c, i) => {
    if (c % heads[i] !== 0)
      throw new UserError(
        `${r.file}: attention_head_dim ${JSON.stringify(heads)}: block ${i}: ${c} channels do not split into ${heads[i]} heads`,
      );
  });
  return heads;
}

export function parseUNetConfig(r: ConfigReader): UNetConfig {
  const blocks = r.list('block_out_channels', 'number');
  const n = blocks.length;
  const down = r.list('down_block_types', 'string');
  const up = r.list('up_block_types', 'string');
  const bad = (key: string, v: unknown, why: string) => new UserError(`${r.file}: ${key} ${JSON.stringify(v)}: ${why}`);
  if (down.length !== n || down.some((d) => d !== 'CrossAttnDownBlock2D' && d !== 'DownBlock2D'))
    throw bad('down_block_types', down, `expected ${n} of CrossAttnDownBlock2D, DownBlock2D`);
  if (up.length !== n || up.some((d) => d !== 'CrossAttnUpBlock2D' && d !== 'UpBlock2D'))
    throw bad('up_block_types', up, `expected ${n} of CrossAttnUpBlock2D, UpBlock2D`);
  refuseUnimplemented(r);
  const groups = r.int('norm_num_groups', 32);
  for (const c of blocks)
    if (c % groups !== 0)
      throw bad('block_out_channels', blocks, `every width must be a multiple of norm_num_groups ${groups}`);
  const pad = r.int('downsample_padding', 1);
  if (pad !== 0 && pad !== 1) throw bad('downsample_padding', pad, 'expected 0 or 1');
  const timeDim = r.value('time_embedding_dim', null) === null ? 4 * blocks[0] : r.int('time_embedding_dim');
  const config: UNetConfig = {
    inChannels: r.int('in_channels', 4),
    outChannels: r.int('out_channels', 4),
    blockOutChannels: blocks,
    down: down as DownType[],
    up: up as UpType[],
    layersPerBlock: r.int('layers_per_block', 2),
    groups,
    eps: r.num('norm_eps', 1e-5),
    crossAttentionDim: r.int('cross_attention_dim', 1280),
    heads: headCounts(r, blocks),
    transformerLayers: r.perBlock('transformer_layers_per_block', n, 1),
    linearProjection: r.bool('use_linear_projection', false),
    flipSinToCos: r.bool('flip_sin_to_cos', true),
    freqShift: r.num('freq_shift', 0),
    downsamplePadding: pad,
    sampleSize: r.int('sample_size', 64),
    centerInput: r.bool('center_input_sample', false),
    timeEmbedDim: timeDim,
    timestepPostAct: optionalActivation(r, 'timestep_post_act'),
    timeEmbeddingAct: optionalActivation(r, 'time_embedding_act_fn'),
  };
  r.finish();
  return config;
}

/** diffusers' get_timestep_embedding: [B, dim] sinusoids, exponent over (half − shift), cos first when flipped. */
function timestepEmbedding(t: tf.Tensor1D, dim: number, flipSinToCos: boolean, shift: number): tf.Tensor2D {
  const half = Math.floor(dim / 2);
  const freqs = tf.exp(tf.mul(tf.range(0, half, 1, 'float32'), -Math.log(10000) / (half - shift)));
  const args = tf.mul(tf.expandDims(tf.cast(t, 'float32'), 1), tf.expandDims(freqs, 0));
  const [s, c] = [tf.sin(args), tf.cos(args)];
  return tf.concat(flipSinToCos ? [c, s] : [s, c], 1) as tf.Tensor2D;
}

function activate(x: tf.Tensor2D, act: Activation | null): tf.Tensor2D {
  switch (act) {
    case null:
      return x;
    case 'silu':
    case 'swish':
      return silu(x) as tf.Tensor2D;
    case 'mish':
      return tf.mul(x, tf.tanh(tf.softplus(x)));
    case 'gelu': // torch's nn.GELU(): the exact, erf form
      return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
    case 'relu':
      return tf.relu(x);
  }
}

/**
 * The embedding every ResNet block receives: TimestepEmbedding (linear_1, SiLU, linear_2, then
 * timestep_post_act) of the sinusoids, then time_embedding_act_fn once on the result.
 */
function timeEmbedding(p: Params, c: UNetConfig, t: tf.Tensor1D): tf.Tensor2D {
  const b0 = c.blockOutChannels[0];
  const h = silu(
    torchLinear(p, 'time_embedding.linear_1', timestepEmbedding(t, b0, c.flipSinToCos, c.freqShift), c.timeEmbedDim),
  );
  const emb = activate(torchLinear(p, 'time_embedding.linear_2', h, c.timeEmbedDim) as tf.Tensor2D, c.timestepPostAct);
  return activate(emb, c.timeEmbeddingAct);
}

/**
 * ε̂ (or v̂, per the scheduler's prediction_type) [B, H, W, out] for latents [B, H, W, in] at
 * timesteps t [B] with text hidden states context [B, M, cross_attention_dim].
 */
export function unetForward(
  p: Params,
  c: UNetConfig,
  sample: tf.Tensor4D,
  t: tf.Tensor1D,
  context: tf.Tensor3D,
): tf.Tensor4D {
  const norm: NormSpec = { groups: c.groups, eps: c.eps };
  const b0 = c.blockOutChannels[0];
  const temb = timeEmbedding(p, c, t);
  const cross = (n: string, x: tf.Tensor4D, i: number) =>
    transformer2d(p, n, x, context, c.heads[i], c.transformerLayers[i], c.groups, c.linearProjection);

  let x = conv2d(p, 'conv_in', c.centerInput ? (tf.sub(tf.mul(sample, 2), 1) as tf.Tensor4D) : sample, b0);
  const skips: tf.Tensor4D[] = [x];
  c.blockOutChannels.forEach((ch, i) => {
    for (let j = 0; j < c.layersPerBlock; j++) {
      x = resnetBlock(p, `down_blocks.${i}.resnets.${j}`, x, ch, norm, temb);
      if (c.down[i] === 'CrossAttnDownBlock2D') x = cross(`down_blocks.${i}.attentions.${j}`, x, i);
      skips.push(x);
    }
    if (i < c.blockOutChannels.length - 1) {
      x = downsample(p, `down_blocks.${i}.downsamplers.0`, x, c.downsamplePadding);
      skips.push(x);
    }
  });

  const last = c.blockOutChannels.length - 1;
  const midCh = c.blockOutChannels[last];
  x = resnetBlock(p, 'mid_block.resnets.0', x, midCh, norm, temb);
  x = cross('mid_block.attentions.0', x, last);
  x = resnetBlock(p, 'mid_block.resnets.1', x, midCh, norm, temb);

  const rev = [...c.blockOutChannels].reverse();
  const revHeads = [...c.heads].reverse();
  const revLayers = [...c.transformerLayers].reverse();
  rev.forEach((ch, i) => {
    for (let j = 0; j <= c.layersPerBlock; j++) {
      x = resnetBlock(p, `up_blocks.${i}.resnets.${j}`, tf.concat([x, skips.pop()!], 3), ch, norm, temb);
      if (c.up[i] === 'CrossAttnUpBlock2D')
        x = transformer2d(
          p,
          `up_blocks.${i}.attentions.${j}`,
          x,
          context,
          revHeads[i],
          revLayers[i],
          c.groups,
          c.linearProjection,
        );
    }
    if (i < rev.length - 1) x = upsample(p, `up_blocks.${i}.upsamplers.0`, x);
  });
  return conv2d(p, 'conv_out', groupNormSilu(p, 'conv_norm_out', x, c.groups, c.eps), c.outChannels);
}

export interface UNet {
  config: UNetConfig;
  params: Params;
}

/** The UNet on the smallest input it takes: reads every parameter once. */
function touchUNet(p: Params, config: UNetConfig): tf.Tensor4D {
  const f = 2 ** (config.blockOutChannels.length - 1);
  return unetForward(
    p,
    config,
    tf.zeros([1, f, f, config.inChannels]),
    tf.tensor1d([1]),
    tf.zeros([1, 1, config.crossAttentionDim]),
  );
}

/** A diffusers `unet/` folder, loaded strictly. */
export function loadUNet(dir: string): UNet {
  const config = parseUNetConfig(ConfigReader.of(dir));
  return { config, params: loadVerified(diffusersWeights(dir), (p) => touchUNet(p, config)) };
}

/** The architecture of a config with seeded random weights (no file). */
export function randomUNet(config: UNetConfig, seed: number): UNet {
  return { config, params: Params.created(seed, (p) => touchUNet(p, config)) };
}
