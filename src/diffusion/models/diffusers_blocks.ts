/**
 * The building blocks diffusers' UNet2DConditionModel and AutoencoderKL share, written from their
 * architecture (Rombach et al. 2022, and the published configs), NHWC, under diffusers' parameter
 * names so the published weights load as they are (after the loader's OIHW → HWIO transpose).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../nn/params.js';
import { conv2d, groupNorm, groupNormSilu, layerNorm, silu, upsample2x } from '../../nn/layers.js';
import { mergeHeads, scaledDotProductAttention, splitHeads, torchLinear } from '../../nn/attention.js';

export interface NormSpec {
  groups: number;
  eps: number;
}

/**
 * ResnetBlock2D: conv1(silu(norm1 x)) [+ time_emb_proj(silu temb)], conv2(silu(norm2 h)), added to
 * x (through a 1×1 conv_shortcut when the width changes). Dropout is the identity at inference.
 */
export function resnetBlock(
  p: Params,
  n: string,
  x: tf.Tensor4D,
  cout: number,
  norm: NormSpec,
  temb?: tf.Tensor2D,
): tf.Tensor4D {
  let h = conv2d(p, `${n}.conv1`, groupNormSilu(p, `${n}.norm1`, x, norm.groups, norm.eps), cout);
  if (temb)
    h = tf.add(h, tf.reshape(torchLinear(p, `${n}.time_emb_proj`, silu(temb), cout), [temb.shape[0], 1, 1, cout]));
  h = conv2d(p, `${n}.conv2`, groupNormSilu(p, `${n}.norm2`, h, norm.groups, norm.eps), cout);
  const skip = x.shape[3] === cout ? x : conv2d(p, `${n}.conv_shortcut`, x, cout, 1);
  return tf.add(skip, h) as tf.Tensor4D;
}

/**
 * Downsample2D with a conv: stride 2, padding 1 (UNet) or, as the VAE encoder does, 0 with one
 * extra row and column at the end.
 */
export function downsample(p: Params, n: string, x: tf.Tensor4D, padding: 0 | 1): tf.Tensor4D {
  if (padding === 1) return conv2d(p, `${n}.conv`, x, x.shape[3], 3, 2);
  const padded = tf.pad(x, [
    [0, 0],
    [0, 1],
    [0, 1],
    [0, 0],
  ]);
  const w = p.get(`${n}.conv.weight`, [3, 3, x.shape[3], x.shape[3]], {
    kind: 'normal',
    std: Math.sqrt(1 / (9 * x.shape[3])),
  });
  const b = p.get(`${n}.conv.bias`, [x.shape[3]], { kind: 'zeros' });
  return tf.add(tf.conv2d(padded, w as tf.Tensor4D, 2, 'valid'), b) as tf.Tensor4D;
}

/** Upsample2D: nearest-neighbour ×2, then a 3×3 conv. */
export function upsample(p: Params, n: string, x: tf.Tensor4D): tf.Tensor4D {
  return conv2d(p, `${n}.conv`, upsample2x(x), x.shape[3]);
}

/** Self- or cross-attention of [B, T, C] queries (diffusers' Attention: to_q, to_k, to_v, to_out.0). */
function attention(
  p: Params,
  n: string,
  x: tf.Tensor3D,
  heads: number,
  qkvBias: boolean,
  context?: tf.Tensor3D,
): tf.Tensor3D {
  const c = x.shape[2];
  const ctx = context ?? x;
  const q = splitHeads(torchLinear(p, `${n}.to_q`, x, c, qkvBias), heads);
  const k = splitHeads(torchLinear(p, `${n}.to_k`, ctx, c, qkvBias), heads);
  const v = splitHeads(torchLinear(p, `${n}.to_v`, ctx, c, qkvBias), heads);
  return torchLinear(p, `${n}.to_out.0`, mergeHeads(scaledDotProductAttention(q, k, v)), c) as tf.Tensor3D;
}

/** The VAE's mid-block attention: GroupNorm, one head over the H·W positions, residual. */
export function spatialSelfAttention(p: Params, n: string, x: tf.Tensor4D, norm: NormSpec): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const t = tf.reshape(groupNorm(p, `${n}.group_norm`, x, norm.groups, norm.eps), [b, h * w, c]) as tf.Tensor3D;
  return tf.add(x, tf.reshape(attention(p, n, t, 1, true), [b, h, w, c])) as tf.Tensor4D;
}

/** GEGLU feed-forward: proj to 2·inner, value · GELU(gate) (exact, erf), then back to C. */
function feedForward(p: Params, n: string, x: tf.Tensor3D): tf.Tensor3D {
  const c = x.shape[2];
  const inner = 4 * c;
  const both = torchLinear(p, `${n}.net.0.proj`, x, 2 * inner);
  const [value, gate] = tf.split(both, 2, -1);
  const gelu = tf.mul(tf.mul(gate, 0.5), tf.add(1, tf.erf(tf.mul(gate, Math.SQRT1_2))));
  return torchLinear(p, `${n}.net.2`, tf.mul(value, gelu), c) as tf.Tensor3D;
}

/** BasicTransformerBlock: self-attention, cross-attention to the context, GEGLU MLP; pre-LayerNorm, residuals. */
function basicTransformerBlock(p: Params, n: string, x: tf.Tensor3D, context: tf.Tensor3D, heads: number): tf.Tensor3D {
  x = tf.add(x, attention(p, `${n}.attn1`, layerNorm(p, `${n}.norm1`, x) as tf.Tensor3D, heads, false));
  x = tf.add(x, attention(p, `${n}.attn2`, layerNorm(p, `${n}.norm2`, x) as tf.Tensor3D, heads, false, context));
  return tf.add(x, feedForward(p, `${n}.ff`, layerNorm(p, `${n}.norm3`, x) as tf.Tensor3D));
}

/**
 * Transformer2DModel over a feature map: GroupNorm (eps 1e-6), proj_in (1×1 conv, or a linear
 * layer with use_linear_projection), transformer blocks, proj_out, residual.
 */
export function transformer2d(
  p: Params,
  n: string,
  x: tf.Tensor4D,
  context: tf.Tensor3D,
  heads: number,
  layers: number,
  groups: number,
  linearProjection: boolean,
): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const normed = groupNorm(p, `${n}.norm`, x, groups, 1e-6);
  let t = (
    linearProjection
      ? torchLinear(p, `${n}.proj_in`, tf.reshape(normed, [b, h * w, c]), c)
      : tf.reshape(conv2d(p, `${n}.proj_in`, normed, c, 1), [b, h * w, c])
  ) as tf.Tensor3D;
  for (let i = 0; i < layers; i++) t = basicTransformerBlock(p, `${n}.transformer_blocks.${i}`, t, context, heads);
  const out = linearProjection
    ? tf.reshape(torchLinear(p, `${n}.proj_out`, t, c), [b, h, w, c])
    : conv2d(p, `${n}.proj_out`, tf.reshape(t, [b, h, w, c]) as tf.Tensor4D, c, 1);
  return tf.add(x, out) as tf.Tensor4D;
}

export { silu, groupNormSilu, conv2d };
