/**
 * The identity net ("ArcFace role"): a unit-norm embedding where faces with the same identity
 * attributes (skin tone, face shape, eye colour, background) lie close whatever their editable
 * attributes (hair, expression, glasses, pose) or jitter. Trained as ArcFace does: a cosine
 * classifier over identity classes with an additive angular margin; the embedding is what ships.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../../src/nn/params.js';
import { conv2d, groupNormSilu, linear } from '../../../src/nn/layers.js';
import { IDENTITY, type IdentityName } from '../attributes.js';

export interface IdNetConfig {
  widths: number[];
  embedding: number;
  groups: number;
  /** ArcFace scale s and margin m (radians). */
  scale: number;
  margin: number;
}

export const IDNET_DEFAULT: IdNetConfig = { widths: [32, 64, 96], embedding: 64, groups: 8, scale: 16, margin: 0.3 };

const ID_NAMES = Object.keys(IDENTITY) as IdentityName[];
const ID_CLASSES = ID_NAMES.reduce((n, k) => n * IDENTITY[k].length, 1);

/** Mixed-radix class index (0 .. ID_CLASSES−1) of identity attributes, given each one's value index. */
export function identityIndex(valueIndex: (name: IdentityName) => number): number {
  return ID_NAMES.reduce((c, k) => c * IDENTITY[k].length + valueIndex(k), 0);
}

export function idnetEmbed(p: Params, x: tf.Tensor4D, cfg: IdNetConfig): tf.Tensor2D {
  let h = tf.sub(tf.mul(x, 2), 1) as tf.Tensor4D;
  cfg.widths.forEach((w, i) => {
    h = groupNormSilu(p, `stage${i}.norm`, conv2d(p, `stage${i}.conv`, h, w, 3, i === 0 ? 1 : 2), cfg.groups);
    h = groupNormSilu(p, `stage${i}.norm2`, conv2d(p, `stage${i}.conv2`, h, w), cfg.groups);
  });
  const e = linear(p, 'embed', tf.mean(h, [1, 2]), cfg.embedding) as tf.Tensor2D;
  return tf.div(e, tf.add(tf.norm(e, 2, 1, true), 1e-8)) as tf.Tensor2D;
}

/** ArcFace loss: cross-entropy of s·cos(θ + m) for the true class, s·cos θ for the others. */
export function idnetLoss(p: Params, x: tf.Tensor4D, y: tf.Tensor, cfg: IdNetConfig): tf.Scalar {
  const e = idnetEmbed(p, x, cfg);
  const w = p.get('arc.weight', [cfg.embedding, ID_CLASSES], { kind: 'normal', std: 0.1 });
  const wn = tf.div(w, tf.add(tf.norm(w, 2, 0, true), 1e-8));
  const cos = tf.clipByValue(tf.matMul(e, wn), -1 + 1e-6, 1 - 1e-6);
  const onehot = tf.oneHot(tf.cast(tf.reshape(y, [-1]), 'int32'), ID_CLASSES);
  // cos(θ + m) = cos θ cos m − sin θ sin m, applied to the target logit only.
  const sin = tf.sqrt(tf.sub(1, tf.square(cos)));
  const target = tf.sub(tf.mul(cos, Math.cos(cfg.margin)), tf.mul(sin, Math.sin(cfg.margin)));
  const logits = tf.mul(tf.add(tf.mul(onehot, target), tf.mul(tf.sub(1, onehot), cos)), cfg.scale);
  return tf.losses.softmaxCrossEntropy(onehot, logits) as tf.Scalar;
}
