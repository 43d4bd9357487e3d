/** GroupNorm's hand-written gradient against autodiff of the plain ops (on SDD_BACKEND), and its values. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { backendFromEnv, initBackend } from '../backend/index.js';
import { groupNormOp, groupNormReference, silu, siluReference } from './layers.js';

await initBackend(backendFromEnv());

async function maxRel(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const x = await a.data();
  const y = await b.data();
  let scale = 0;
  let err = 0;
  for (let i = 0; i < x.length; i++) {
    scale = Math.max(scale, Math.abs(y[i]));
    err = Math.max(err, Math.abs(x[i] - y[i]));
  }
  return err / scale;
}

for (const [shape, groups] of [
  [[2, 5, 4, 8], 4],
  [[3, 3, 3, 6], 2],
  [[1, 8, 8, 16], 8],
] as const) {
  test(`groupNorm value and gradients match autodiff: ${shape} / ${groups} groups (rel ≤ 1e-5)`, async () => {
    const x = tf.randomNormal([...shape], 0.3, 2, 'float32', 1) as tf.Tensor4D;
    const gamma = tf.randomNormal([shape[3]], 1, 0.2, 'float32', 2);
    const beta = tf.randomNormal([shape[3]], 0, 0.2, 'float32', 3);
    const proj = tf.randomNormal([...shape], 0, 1, 'float32', 4);
    const loss = (f: typeof groupNormOp) => (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(f(a as tf.Tensor4D, g, b, groups), proj));
    assert.ok((await maxRel(groupNormOp(x, gamma, beta, groups), groupNormReference(x, gamma, beta, groups))) < 1e-5);
    const ours = tf.grads(loss(groupNormOp))([x, gamma, beta]);
    const ref = tf.grads(loss(groupNormReference))([x, gamma, beta]);
    for (const [i, n] of ['dx', 'dgamma', 'dbeta'].entries()) {
      const e = await maxRel(ours[i], ref[i]);
      assert.ok(e < 1e-5, `${n}: ${e}`);
    }
    tf.dispose([x, gamma, beta, proj, ...ours, ...ref]);
  });
}

test('silu value and gradient match autodiff (rel ≤ 1e-5)', async () => {
  const x = tf.randomNormal([4, 5, 6, 3], 0, 3, 'float32', 9);
  const proj = tf.randomNormal([4, 5, 6, 3], 0, 1, 'float32', 10);
  assert.ok((await maxRel(silu(x), siluReference(x))) < 1e-6);
  const g1 = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(silu(a), proj)))(x);
  const g2 = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(siluReference(a), proj)))(x);
  const e = await maxRel(g1, g2);
  assert.ok(e < 1e-5, `${e}`);
  tf.dispose([x, proj, g1, g2]);
});
