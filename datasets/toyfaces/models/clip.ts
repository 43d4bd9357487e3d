/**
 * Mini-CLIP: an image tower and a text tower trained contrastively on (image, caption) pairs.
 * Its text tower's last hidden states condition the latent diffusion U-Net, as SD's text
 * encoder is CLIP's. Embeddings are unit-norm; images NHWC in [0, 1]; texts as token ids.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../../src/nn/params.js';
import { conv2d, groupNormSilu, layerNorm, linear, multiHeadAttention, silu } from '../../../src/nn/layers.js';
import { MAX_TOKENS, VOCAB_SIZE } from '../tokenizer.js';

export interface ClipConfig {
  imageWidths: number[];
  groups: number;
  textWidth: number;
  textLayers: number;
  textHeads: number;
  embedding: number;
  /** Probability that a training caption is the full one (else a random partial caption). */
  fullCaption: number;
}

export const CLIP_DEFAULT: ClipConfig = {
  imageWidths: [24, 48, 64, 96],
  groups: 8,
  textWidth: 64,
  textLayers: 2,
  textHeads: 4,
  embedding: 64,
  fullCaption: 0.5,
};

const unit = (e: tf.Tensor) => tf.div(e, tf.add(tf.norm(e, 2, -1, true), 1e-8));

export function clipImageEmbed(p: Params, x: tf.Tensor4D, cfg: ClipConfig): tf.Tensor2D {
  let h = tf.sub(tf.mul(x, 2), 1) as tf.Tensor4D;
  cfg.imageWidths.forEach((w, i) => {
    h = groupNormSilu(
      p,
      `image.stage${i}.norm`,
      conv2d(p, `image.stage${i}.conv`, h, w, 3, i === 0 ? 1 : 2),
      cfg.groups,
    );
    h = groupNormSilu(p, `image.stage${i}.norm2`, conv2d(p, `image.stage${i}.conv2`, h, w), cfg.groups);
  });
  return unit(linear(p, 'image.proj', tf.mean(h, [1, 2]), cfg.embedding)) as tf.Tensor2D;
}

/** Token mask [B, L]: 1 for words, 0 for padding. */
function tokenMask(ids: tf.Tensor): tf.Tensor2D {
  return tf.cast(tf.greater(ids, 0), 'float32') as tf.Tensor2D;
}

/** Last hidden states [B, L, textWidth] (what the U-Net cross-attends to), ids [B, L] as floats. */
function clipTextSequence(p: Params, ids: tf.Tensor, cfg: ClipConfig): tf.Tensor3D {
  const b = ids.shape[0];
  const d = cfg.textWidth;
  const onehot = tf.oneHot(tf.reshape(tf.cast(ids, 'int32'), [-1]), VOCAB_SIZE);
  // Embedding as a one-hot product: its gradient is a plain matmul (no scatter on wasm).
  const tok = tf.reshape(tf.matMul(onehot, p.get('text.token', [VOCAB_SIZE, d], { kind: 'normal', std: 0.1 })), [
    b,
    MAX_TOKENS,
    d,
  ]);
  let h: tf.Tensor = tf.add(tok, p.get('text.position', [MAX_TOKENS, d], { kind: 'normal', std: 0.02 }));
  const mask = tokenMask(ids);
  for (let l = 0; l < cfg.textLayers; l++) {
    const a = layerNorm(p, `text.block${l}.norm1`, h);
    h = tf.add(h, multiHeadAttention(p, `text.block${l}.attn`, a, a, cfg.textHeads, mask));
    const m = linear(
      p,
      `text.block${l}.fc2`,
      silu(linear(p, `text.block${l}.fc1`, layerNorm(p, `text.block${l}.norm2`, h), 2 * d)),
      d,
    );
    h = tf.add(h, m);
  }
  return layerNorm(p, 'text.final', h) as tf.Tensor3D;
}

/** Pooled text embedding: mean of the word positions' hidden states, projected, unit-norm. */
export function clipTextEmbed(p: Params, ids: tf.Tensor, cfg: ClipConfig): tf.Tensor2D {
  const h = clipTextSequence(p, ids, cfg);
  const mask = tf.expandDims(tokenMask(ids), 2);
  const pooled = tf.div(tf.sum(tf.mul(h, mask), 1), tf.maximum(tf.sum(mask, 1), 1));
  return unit(linear(p, 'text.proj', pooled, cfg.embedding)) as tf.Tensor2D;
}

/** Learned temperature, CLIP's init ln(1/0.07) (stored as an offset from it), clamped at ln 100 as CLIP does. */
export function logitScale(p: Params): tf.Tensor {
  return tf.exp(tf.minimum(tf.add(p.get('logit_scale', [1], { kind: 'zeros' }), Math.log(1 / 0.07)), Math.log(100)));
}

/** Symmetric InfoNCE over the batch; y: caption token ids [B, L]. */
export function clipLoss(p: Params, x: tf.Tensor4D, y: tf.Tensor, cfg: ClipConfig): tf.Scalar {
  const img = clipImageEmbed(p, x, cfg);
  const txt = clipTextEmbed(p, y, cfg);
  const logits = tf.mul(tf.matMul(img, txt, false, true), logitScale(p));
  const labels = tf.oneHot(tf.range(0, x.shape[0], 1, 'int32'), x.shape[0]);
  const li = tf.losses.softmaxCrossEntropy(labels, logits);
  const lt = tf.losses.softmaxCrossEntropy(labels, tf.transpose(logits));
  return tf.mul(tf.add(li, lt), 0.5) as tf.Scalar;
}

/**
 * Text conditioning for the diffusion U-Net, as SD conditions on CLIP's last hidden states: the
 * context [n, L, textWidth] and the key mask [n, L]. The empty prompt (the unconditional branch of
 * classifier-free guidance) attends to all its positions, as SD attends to the encoding of "".
 */
export async function textCondition(
  p: Params,
  cfg: ClipConfig,
  ids: Float32Array,
  n: number,
): Promise<{ context: Float32Array; mask: Float32Array }> {
  const [context, mask] = tf.tidy(() => {
    const t = tf.tensor2d(ids, [n, MAX_TOKENS]);
    const m = tokenMask(t);
    const empty = tf.equal(tf.sum(m, 1, true), 0);
    return [clipTextSequence(p, t, cfg), tf.where(tf.tile(empty, [1, MAX_TOKENS]), tf.onesLike(m), m)];
  });
  try {
    return { context: (await context.data()) as Float32Array, mask: (await mask.data()) as Float32Array };
  } finally {
    tf.dispose([context, mask]);
  }
}
