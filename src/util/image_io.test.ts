import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { centreSquare, resizeBilinearHost } from './image_io.js';

test('resizeBilinearHost equals tfjs resizeBilinear with half-pixel centres (up and down, odd sizes)', async () => {
  await tf.setBackend('cpu');
  const [h, w, c] = [7, 11, 3];
  const src = Float32Array.from({ length: h * w * c }, (_, i) => Math.sin(i * 0.7) + (i % 5) * 0.1);
  for (const [oh, ow] of [
    [16, 16],
    [3, 5],
    [7, 11],
    [299, 13],
  ]) {
    const want = tf.image.resizeBilinear(tf.tensor3d(src, [h, w, c]), [oh, ow], false, true).dataSync();
    const got = resizeBilinearHost(src, h, w, c, oh, ow);
    let max = 0;
    for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(want[i] - got[i]));
    assert.ok(max < 1e-5, `${oh}×${ow}: max |Δ| ${max}`);
  }
});

test('centreSquare takes the middle of the longer side', () => {
  const src = Float32Array.from({ length: 2 * 4 }, (_, i) => i); // 2 rows × 4 columns, 1 channel
  assert.deepEqual([...centreSquare(src, 2, 4, 1).data], [1, 2, 5, 6]);
  assert.equal(centreSquare(src, 4, 2, 1).side, 2);
});
