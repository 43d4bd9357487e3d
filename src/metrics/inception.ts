/**
 * The `inception` feature extractor: pytorch-fid's FID Inception (2048-d pool3), from its weights
 * converted to safetensors by tools/convert_pytorch_fid_inception.py. Registered here, beside the
 * metrics, because it belongs to no world: every world's FID can use it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors.js';
import { sha256File } from '../util/hash.js';
import { INCEPTION_DIMS, INCEPTION_SIZE, inceptionPool3, touchInception } from '../nn/inception_fid.js';
import { loadVerified } from '../nn/torch_weights.js';
import type { Params } from '../nn/params.js';
import { registerExtractor, type Extractor } from './features.js';

/** Images per forward: bounds the activations (the first layers hold ~2.8 MB per image). */
const BATCH = 16;

/** Where the weights come from and the converter to run (sdd fid's error, the worlds' inception role). */
export const INCEPTION_HELP =
  'pt_inception-2015-12-05-6726825d.pth from github.com/mseitzer/pytorch-fid/releases (tag fid_weights), then python3 tools/convert_pytorch_fid_inception.py pt_inception-2015-12-05-6726825d.pth pt_inception-2015-12-05.safetensors';

/** The weights loaded strictly: a file that is not pytorch-fid's Inception fails with the names at fault. */
export function loadInception(path: string): Params {
  return loadVerified(path, touchInception);
}

export async function inceptionExtractor(weights: string): Promise<Extractor> {
  const params = loadInception(weights);
  return {
    id: 'inception',
    dims: INCEPTION_DIMS,
    inputSize: INCEPTION_SIZE,
    weightsSha256: sha256File(weights),
    async extract(images, n) {
      const per = INCEPTION_SIZE * INCEPTION_SIZE * 3;
      const parts: tf.Tensor2D[] = [];
      for (let i = 0; i < n; i += BATCH) {
        const m = Math.min(BATCH, n - i);
        parts.push(
          tf.tidy(() =>
            inceptionPool3(
              params,
              tf.tensor4d(images.subarray(i * per, (i + m) * per), [m, INCEPTION_SIZE, INCEPTION_SIZE, 3]),
            ),
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
}

registerExtractor('inception', {
  describe: "pytorch-fid's FID Inception-v3, pool3 (2048-d); needs --weights",
  async load({ weights }) {
    if (!weights) throw new UserError(`--features inception: needs --weights FILE: ${INCEPTION_HELP}`);
    return inceptionExtractor(weights);
  },
});
