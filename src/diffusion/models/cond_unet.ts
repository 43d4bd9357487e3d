/**
 * The conditional noise predictor ε(z_t, t, context) of latent diffusion (SD's UNet2DCondition
 * role): ResNet blocks with a timestep embedding, cross-attention to a context sequence (text
 * hidden states, or a DiffAE semantic code as one token), one down/up level with skips. World
 * agnostic: sizes come from the config, weights from whatever Params it is given.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../nn/params.js';
import {
  conv2d,
  groupNorm,
  groupNormSilu,
  layerNorm,
  linear,
  multiHeadAttention,
  silu,
  upsample2x,
} from '../../nn/layers.js';

export interface CondUNetConfig {
  /** Channels per resolution level (first = latent resolution), e.g. [64, 128]. */
  widths: number[];
  latentChannels: number;
  timeDim: number;
  heads: number;
  groups: number;
}

/** Sinusoidal timestep features [B, dim] (diffusers' get_timestep_embedding, flip_sin_to_cos). */
function timestepFeatures(t: tf.Tensor1D, dim: number): tf.Tensor2D {
  const half = dim / 2;
  const freqs = tf.exp(tf.mul(tf.range(0, half), -Math.log(10000) / half));
  const args = tf.mul(tf.expandDims(t, 1), tf.expandDims(freqs, 0));
  return tf.concat([tf.cos(args), tf.sin(args)], 1) as tf.Tensor2D;
}

function resBlockT(
  p: Params,
  name: string,
  x: tf.Tensor4D,
  temb: tf.Tensor2D,
  cout: number,
  groups: number,
): tf.Tensor4D {
  const b = x.shape[0];
  let h = conv2d(p, `${name}.conv1`, groupNormSilu(p, `${name}.norm1`, x, groups), cout);
  h = tf.add(h, tf.reshape(linear(p, `${name}.time`, silu(temb), cout), [b, 1, 1, cout])) as tf.Tensor4D;
  h = conv2d(p, `${name}.conv2`, groupNormSilu(p, `${name}.norm2`, h, groups), cout);
  const skip = x.shape[3] === cout ? x : conv2d(p, `${name}.skip`, x, cout, 1);
  return tf.add(skip, h) as tf.Tensor4D;
}

/** Self-attention then cross-attention over the H·W positions, each pre-normed, residual. */
function transformer(
  p: Params,
  name: string,
  x: tf.Tensor4D,
  context: tf.Tensor3D,
  mask: tf.Tensor2D,
  heads: number,
  groups: number,
): tf.Tensor4D {
  const [b, hh, ww, c] = x.shape;
  let h: tf.Tensor = tf.reshape(conv2d(p, `${name}.proj_in`, groupNorm(p, `${name}.norm`, x, groups), c, 1), [
    b,
    hh * ww,
    c,
  ]);
  const n1 = layerNorm(p, `${name}.norm1`, h);
  h = tf.add(h, multiHeadAttention(p, `${name}.attn1`, n1, n1, heads));
  h = tf.add(h, multiHeadAttention(p, `${name}.attn2`, layerNorm(p, `${name}.norm2`, h), context, heads, mask));
  h = tf.add(h, linear(p, `${name}.ff2`, silu(linear(p, `${name}.ff1`, layerNorm(p, `${name}.norm3`, h), 2 * c)), c));
  return tf.add(x, conv2d(p, `${name}.proj_out`, tf.reshape(h, [b, hh, ww, c]) as tf.Tensor4D, c, 1)) as tf.Tensor4D;
}

/**
 * ε̂ for latents z [B, H, W, C] at integer timesteps t [B], attending to context [B, M, D] where
 * mask [B, M] is 1.
 */
export function condUnet(
  p: Params,
  z: tf.Tensor4D,
  t: tf.Tensor1D,
  context: tf.Tensor3D,
  mask: tf.Tensor2D,
  cfg: CondUNetConfig,
): tf.Tensor4D {
  const { widths, groups, heads } = cfg;
  const temb = linear(
    p,
    'time.fc2',
    silu(linear(p, 'time.fc1', timestepFeatures(t, cfg.timeDim), cfg.timeDim)),
    cfg.timeDim,
  ) as tf.Tensor2D;
  let h = conv2d(p, 'conv_in', z, widths[0]);
  const skips: tf.Tensor4D[] = [];
  widths.forEach((w, i) => {
    h = resBlockT(p, `down${i}.res`, h, temb, w, groups);
    h = transformer(p, `down${i}.attn`, h, context, mask, heads, groups);
    if (i < widths.length - 1) {
      skips.push(h);
      h = conv2d(p, `down${i}.down`, h, widths[i + 1], 3, 2);
    }
  });
  h = resBlockT(p, 'mid.res', h, temb, widths[widths.length - 1], groups);
  for (let i = widths.length - 2; i >= 0; i--) {
    h = conv2d(p, `up${i}.up`, upsample2x(h), widths[i]);
    h = resBlockT(p, `up${i}.res`, tf.concat([h, skips[i]], 3) as tf.Tensor4D, temb, widths[i], groups);
    h = transformer(p, `up${i}.attn`, h, context, mask, heads, groups);
  }
  return conv2d(p, 'conv_out', groupNormSilu(p, 'norm_out', h, groups), cfg.latentChannels);
}
