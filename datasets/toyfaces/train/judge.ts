/**
 * What an autoencoding keeps: per editable attribute, the share of reconstructions on which the
 * FID feature net's head still reads the true value (visible attributes only). PSNR alone hid
 * that the first VAE and G∘E blurred away the expression of 32% and 62% of the test faces.
 *
 * Fed batch by batch with reconstructions the caller has already made for its PSNR, so each test
 * image is decoded once.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../../src/nn/params.js';
import { ATTRIBUTE_NAMES, EDITABLE_NAMES } from '../attributes.js';
import type { ImageSet } from '../cache.js';
import { featnetFeatures, featnetLogits, type FeatNetConfig } from '../models/featnet.js';
import { loadParams } from '../zoo/store.js';
import { visibleAccuracy } from './clip.js';

export class AttributesKept {
  private readonly judge: { params: Params; cfg: FeatNetConfig };
  private readonly predicted: Int32Array[];

  constructor(private readonly set: ImageSet) {
    const loaded = loadParams('featnet');
    this.judge = { params: loaded.params, cfg: loaded.card.architecture as unknown as FeatNetConfig };
    this.predicted = EDITABLE_NAMES.map(() => new Int32Array(set.n));
  }

  /** Reads the editable attributes off `recon`, the reconstructions of images `idx` of the set. */
  add(idx: number[], recon: tf.Tensor4D): void {
    const { params, cfg } = this.judge;
    const preds = tf.tidy(() => {
      const logits = featnetLogits(params, featnetFeatures(params, tf.clipByValue(recon, 0, 1) as tf.Tensor4D, cfg));
      return EDITABLE_NAMES.map((name) => tf.argMax(logits[ATTRIBUTE_NAMES.indexOf(name)], 1));
    });
    preds.forEach((t, k) => {
      const values = t.dataSync() as Int32Array;
      idx.forEach((image, j) => (this.predicted[k][image] = values[j]));
    });
    tf.dispose(preds);
  }

  /** The card's `attributes_kept`; call once every image of the set was added. */
  result(): Record<string, unknown> {
    const kept = Object.fromEntries(EDITABLE_NAMES.map((name, k) => [name, visibleAccuracy(this.set, name, this.predicted[k]).accuracy]));
    return { judged_by: 'featnet heads on the clipped reconstruction, visible attributes only', ...kept };
  }

  dispose(): void {
    this.judge.params.dispose();
  }
}
