/** Training and evaluation of the FID feature net (datasets/toyfaces/models/featnet.ts). */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../../src/nn/params.js';
import { ATTRIBUTE_NAMES, isVisible, valuesOf, type Attributes } from '../attributes.js';
import { batchIndices, floatBatch, type ImageSet, labelBatch, loadImageSet } from '../cache.js';
import { FEATNET_DEFAULT, featnetFeatures, featnetLogits, type FeatNetConfig } from '../models/featnet.js';
import { readBatches, type ZooTrainSpec } from './common.js';

/**
 * Per-attribute accuracy of the heads on an image set, each attribute counted where it is
 * visible (hair colour: not on bald heads, read from the set's own labels); `counted` says over
 * how many images.
 */
async function evalFeatnet(params: Params, cfg: FeatNetConfig, set: ImageSet): Promise<Record<string, unknown>> {
  const A = ATTRIBUTE_NAMES.length;
  const correct = new Array(A).fill(0);
  const counted = new Array(A).fill(0);
  const batches = batchIndices(set.n, 200);
  // Predicted class per image and head, [n, A] per batch, kept on the device until one read at the end.
  const parts = batches.map((idx) =>
    tf.tidy(() => {
      const x = tf.tensor4d(floatBatch(set, idx), [idx.length, set.size, set.size, 3]);
      return tf.stack(
        featnetLogits(params, featnetFeatures(params, x, cfg)).map((l) => tf.argMax(l, 1)),
        1,
      );
    }),
  );
  const pred = await readBatches<Int32Array>(parts);
  for (const idx of batches) {
    const labels = labelBatch(set, idx);
    const faces = idx.map(
      (_, k) =>
        Object.fromEntries(ATTRIBUTE_NAMES.map((name, a) => [name, valuesOf(name)[labels[k * A + a]]])) as Attributes,
    );
    for (let a = 0; a < A; a++) {
      for (let k = 0; k < idx.length; k++) {
        if (!isVisible(faces[k], ATTRIBUTE_NAMES[a])) continue;
        counted[a]++;
        if (pred[idx[k] * A + a] === labels[k * A + a]) correct[a]++;
      }
    }
  }
  return {
    accuracy: Object.fromEntries(ATTRIBUTE_NAMES.map((name, a) => [name, correct[a] / counted[a]])),
    counted: Object.fromEntries(ATTRIBUTE_NAMES.map((name, a) => [name, counted[a]])),
  };
}

export const FEATNET_SPEC: ZooTrainSpec<'featnet'> = {
  name: 'featnet',
  model: 'featnet',
  config: FEATNET_DEFAULT,
  role: 'FID/KID feature extractor (penultimate, 128-d) and attribute classifier (the Inception role)',
  needs: [],
  // 2000 steps (version 1 had 3000 and read every attribute at ≥ 0.997 against the 0.97 bar):
  // the 9.5 minutes saved keep the whole zoo's retrain inside its 3-hour budget on 2 cores.
  version: 2,
  settings: { steps: 2000, batch: 64, lr: 2e-3, seed: 0, trainN: 24_000, evalN: 2_000, size: 32, checkpointEvery: 200 },
  targets: (set, idx) => ({ y: labelBatch(set, idx), shape: [ATTRIBUTE_NAMES.length] }),
  async evaluate(params, pool, o) {
    const test = await loadImageSet('test', o.evalN, o.size, pool);
    return {
      eval: { split: 'test', n: o.evalN, visible_only: true },
      ...(await evalFeatnet(params, FEATNET_DEFAULT, test)),
    };
  },
};
