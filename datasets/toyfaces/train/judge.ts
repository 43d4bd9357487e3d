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
import { configOf } from '../models/configs.js';
import { loadParams } from '../zoo/store.js';
import { visibleAccuracy } from './clip.js';
import { readBatches } from './common.js';

export class AttributesKept {
  private readonly judge: { params: Params; cfg: FeatNetConfig };
  /** Per added batch: its image indices and the predicted value of each editable attribute, [n, E] on the device. */
  private readonly pending: Array<{ idx: number[]; pred: tf.Tensor2D }> = [];

  constructor(private readonly set: ImageSet) {
    const loaded = loadParams('featnet');
    this.judge = { params: loaded.params, cfg: configOf('featnet', loaded.card.architecture) };
  }

  /**
   * Judges `recon`, the reconstructions of images `idx` of the set (may be called inside a
   * tidy). Nothing is read back until result().
   */
  add(idx: number[], recon: tf.Tensor4D): void {
    const { params, cfg } = this.judge;
    const pred = tf.tidy(() => {
      const logits = featnetLogits(params, featnetFeatures(params, tf.clipByValue(recon, 0, 1) as tf.Tensor4D, cfg));
      return tf.stack(
        EDITABLE_NAMES.map((name) => tf.argMax(logits[ATTRIBUTE_NAMES.indexOf(name)], 1)),
        1,
      ) as tf.Tensor2D;
    });
    this.pending.push({ idx, pred: tf.keep(pred) });
  }

  /** The card's `attributes_kept`; call once every image of the set was added. One read for all batches. */
  async result(): Promise<Record<string, unknown>> {
    const E = EDITABLE_NAMES.length;
    const batches = this.pending.splice(0);
    const values = await readBatches<Int32Array>(batches.map((b) => b.pred));
    const predicted = EDITABLE_NAMES.map(() => new Int32Array(this.set.n));
    let row = 0;
    for (const { idx } of batches) {
      idx.forEach((image, j) => {
        for (let k = 0; k < E; k++) predicted[k][image] = values[(row + j) * E + k];
      });
      row += idx.length;
    }
    const kept = Object.fromEntries(
      EDITABLE_NAMES.map((name, k) => [name, visibleAccuracy(this.set, name, predicted[k]).accuracy]),
    );
    return { judged_by: 'featnet heads on the clipped reconstruction, visible attributes only', ...kept };
  }

  dispose(): void {
    tf.dispose(this.pending.splice(0).map((b) => b.pred));
    this.judge.params.dispose();
  }
}
