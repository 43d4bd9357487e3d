/**
 * The toyfaces FID feature extractor (the Inception role), which the world brings to the metrics'
 * extractor registry (its WorldDef): the penultimate layer of the attribute net, batches kept on
 * the device.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../../src/errors.js';
import type { ExtractorDef } from '../../src/metrics/features.js';
import { loadParams } from './zoo/store.js';
import { featnetFeatures } from './models/featnet.js';
import { configOf } from './models/configs.js';

export const FEATNET_EXTRACTOR: ExtractorDef = {
  describe: 'penultimate layer (128-d) of the toyfaces attribute net (the Inception role)',
  load({ weights }) {
    if (weights)
      throw new UserError(
        `--weights: toyfaces-featnet loads the shipped zoo's featnet; --weights is for extractors without shipped weights (inception)`,
      );
    const { card, params } = loadParams('featnet');
    const cfg = configOf('featnet', card.architecture);
    const size = (card.training.data as { size: number }).size;
    return {
      id: 'toyfaces-featnet',
      dims: cfg.features,
      inputSize: size,
      weightsSha256: card.weights.sha256,
      async extract(images, n) {
        // Batches stay on the device; one read at the end.
        const per = size * size * 3;
        const parts: tf.Tensor2D[] = [];
        for (let i = 0; i < n; i += 256) {
          const m = Math.min(256, n - i);
          parts.push(
            tf.tidy(() =>
              featnetFeatures(params, tf.tensor4d(images.subarray(i * per, (i + m) * per), [m, size, size, 3]), cfg),
            ),
          );
        }
        const all = parts.length === 1 ? parts[0] : tf.concat(parts);
        try {
          return (await all.data()) as Float32Array;
        } finally {
          tf.dispose([...parts, all]);
        }
      },
    };
  },
};
