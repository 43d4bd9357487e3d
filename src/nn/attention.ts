/**
 * Attention as the PyTorch models compute it: PyTorch-layout linear layers ([out, in] weights, as
 * published) and scaled dot-product attention over heads. One place for the attention core, so a
 * backend's fused kernel can replace it for every model that uses it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from './params.js';
import { causalMaskValues, fusedAttention, hasFusedAttention } from '../backend/kernels/attention.js';

/** nn.Linear: y = x·Wᵀ + b with W [out, in] as PyTorch stores it (no transpose copy: matMul's transposeB). */
export function torchLinear(p: Params, name: string, x: tf.Tensor, out: number, bias = true): tf.Tensor {
  const cin = x.shape[x.shape.length - 1];
  const w = p.get(`${name}.weight`, [out, cin], { kind: 'normal', std: Math.sqrt(1 / cin) });
  let y = tf.matMul(tf.reshape(x, [-1, cin]), w, false, true);
  if (bias) y = tf.add(y, p.get(`${name}.bias`, [out], { kind: 'zeros' }));
  return tf.reshape(y, [...x.shape.slice(0, -1), out]);
}

/** [B, T, H·dh] → [B, H, T, dh]. */
export function splitHeads(x: tf.Tensor, heads: number): tf.Tensor4D {
  const [b, t, d] = x.shape as [number, number, number];
  return tf.transpose(tf.reshape(x, [b, t, heads, d / heads]), [0, 2, 1, 3]);
}

/** [B, H, T, dh] → [B, T, H·dh]. */
export function mergeHeads(x: tf.Tensor4D): tf.Tensor3D {
  const [b, h, t, dh] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, t, h * dh]);
}

/**
 * An additive mask tensor, broadcast to [B, H, Tq, Tk] (0 where allowed, a large negative where
 * not), or 'causal' (position i attends to j ≤ i; Tq = Tk), which the fused kernel takes without
 * the [T, T] tensor.
 */
export type AttentionMask = tf.Tensor | 'causal';

/**
 * softmax(q·kᵀ/√dh + mask)·v over [B, H, T, dh] (PyTorch's scaled_dot_product_attention; 'causal'
 * as its is_causal). Only layers.ts multiHeadAttention (the toyfaces models' attention, with a
 * [B, M] key-padding mask) does not come here: its mask differs per sequence, which the kernel
 * has no input for, and its few tokens (≤ the toyfaces prompt length) make the scores small.
 */
export function scaledDotProductAttention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  mask?: AttentionMask,
): tf.Tensor4D {
  const causal = mask === 'causal';
  if (causal && q.shape[2] !== k.shape[2])
    throw new Error(`causal attention needs as many queries as keys (got ${q.shape[2]} and ${k.shape[2]})`);
  // The backend's fused kernel where it has one (webgpu): never materialises the T × T scores.
  if ((!mask || causal) && hasFusedAttention(tf.getBackend())) {
    const [b, h, tq, d] = q.shape;
    const flat = (t: tf.Tensor4D) => tf.reshape(t, [b * h, t.shape[2], d]);
    return tf.reshape(fusedAttention(flat(q), flat(k), flat(v), 1 / Math.sqrt(d), causal), [b, h, tq, d]);
  }
  if (!causal) return attentionOps(q, k, v, mask);
  // The same ops, in the same order, as with causalMask(T) passed in: wasm/cpu numbers do not change.
  const m = causalMask(q.shape[2]);
  try {
    return attentionOps(q, k, v, m);
  } finally {
    // A gradient tape keeps its own copy of what it saves; Add's gradient reads the shapes only.
    m.dispose();
  }
}

/** The same with tfjs ops on any backend: the reference the fused kernel is tested against. */
export function attentionOps(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask?: tf.Tensor): tf.Tensor4D {
  let logits = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(q.shape[3]));
  if (mask) logits = tf.add(logits, mask);
  return tf.matMul(tf.softmax(logits), v);
}

/** The causal mask [1, 1, T, T] as an additive tensor (causalMaskValues: 0 for j ≤ i, −1e9 above). */
export function causalMask(t: number): tf.Tensor4D {
  return tf.tensor4d(causalMaskValues(t, t), [1, 1, t, t]);
}
