/**
 * The FID feature net ("Inception role"): a small CNN trained to predict every toyfaces attribute.
 * Its penultimate layer (global-average-pooled, `features` wide) serves FID/KID; its heads give
 * per-attribute predictions for edit accuracy. Input: NHWC in [0, 1].
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../../src/nn/params.js';
import { conv2d, groupNormSilu, linear, silu } from '../../../src/nn/layers.js';
import { ATTRIBUTE_NAMES, valuesOf } from '../attributes.js';

export interface FeatNetConfig {
  widths: number[]; // per stage; each stage after the first halves the resolution
  features: number;
  groups: number;
}

export const FEATNET_DEFAULT: FeatNetConfig = { widths: [32, 64, 96, 128], features: 128, groups: 8 };

/** Heads in ATTRIBUTE_NAMES order; `classes[i]` values for head i. */
export const HEADS = ATTRIBUTE_NAMES.map((name) => ({ name, classes: valuesOf(name).length }));

export function featnetFeatures(p: Params, x: tf.Tensor4D, cfg: FeatNetConfig): tf.Tensor2D {
  let h = tf.sub(tf.mul(x, 2), 1) as tf.Tensor4D; // [0,1] → [-1,1]
  cfg.widths.forEach((w, i) => {
    h = conv2d(p, `stage${i}.conv`, h, w, 3, i === 0 ? 1 : 2);
    h = groupNormSilu(p, `stage${i}.norm`, h, cfg.groups);
    h = groupNormSilu(p, `stage${i}.norm2`, conv2d(p, `stage${i}.conv2`, h, w), cfg.groups);
  });
  const pooled = tf.mean(h, [1, 2]) as tf.Tensor2D;
  return linear(p, 'proj', pooled, cfg.features) as tf.Tensor2D;
}

/** Logits per head, from the features (after a nonlinearity, so features stay a linear readout). */
export function featnetLogits(p: Params, features: tf.Tensor2D): tf.Tensor2D[] {
  const h = silu(features);
  return HEADS.map((head) => linear(p, `head.${head.name}`, h, head.classes) as tf.Tensor2D);
}

/** Sum over heads of softmax cross-entropy; y holds class indices [B, heads] as floats. */
export function featnetLoss(p: Params, x: tf.Tensor4D, y: tf.Tensor, cfg: FeatNetConfig): tf.Scalar {
  const logits = featnetLogits(p, featnetFeatures(p, x, cfg));
  const labels = tf.split(tf.cast(y, 'int32'), HEADS.length, 1);
  const losses = logits.map((l, i) =>
    tf.losses.softmaxCrossEntropy(tf.oneHot(tf.reshape(labels[i], [-1]) as tf.Tensor1D, HEADS[i].classes), l),
  );
  return tf.addN(losses) as tf.Scalar;
}
