/**
 * What an autoencoding keeps: per editable attribute, the share of reconstructions on which the
 * FID feature net's head still reads the true value (visible attributes only). PSNR alone hid
 * that the first VAE and G∘E blurred away the expression of 32% and 62% of the test faces.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ATTRIBUTE_NAMES, EDITABLE_NAMES } from '../attributes.js';
import { floatBatch, type ImageSet } from '../cache.js';
import { featnetFeatures, featnetLogits, type FeatNetConfig } from '../models/featnet.js';
import { loadParams } from '../zoo/store.js';
import { visibleAccuracy } from './clip.js';

/** `reconstruct` maps a batch of images in [0, 1] to their reconstructions (clipped here). */
export function attributesKept(set: ImageSet, reconstruct: (x: tf.Tensor4D) => tf.Tensor4D): Record<string, unknown> {
  const judge = loadParams('featnet');
  const cfg = judge.card.architecture as unknown as FeatNetConfig;
  const predicted = EDITABLE_NAMES.map(() => new Int32Array(set.n));
  try {
    for (let i = 0; i < set.n; i += 200) {
      const idx = Array.from({ length: Math.min(200, set.n - i) }, (_, k) => i + k);
      const preds = tf.tidy(() => {
        const x = tf.tensor4d(floatBatch(set, idx), [idx.length, set.size, set.size, 3]);
        const logits = featnetLogits(judge.params, featnetFeatures(judge.params, tf.clipByValue(reconstruct(x), 0, 1) as tf.Tensor4D, cfg));
        return EDITABLE_NAMES.map((name) => tf.argMax(logits[ATTRIBUTE_NAMES.indexOf(name)], 1));
      });
      preds.forEach((t, k) => predicted[k].set(t.dataSync() as Int32Array, i));
      tf.dispose(preds);
    }
  } finally {
    judge.params.dispose();
  }
  const kept = Object.fromEntries(EDITABLE_NAMES.map((name, k) => [name, visibleAccuracy(set, name, predicted[k]).accuracy]));
  return { judged_by: 'featnet heads on the clipped reconstruction, visible attributes only', ...kept };
}
