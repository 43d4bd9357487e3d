/** The explicit denoising loops: CFG combination, and DDIM inversion undone by DDIM sampling. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../backend/index.js';
import { DdimScheduler, DDIM_SD } from '../schedulers/ddim.js';
import { cfgEps, ddimInvert, ddimSample, type Condition } from './sample.js';
import { Rng } from '../../util/rng.js';

await initBackend('wasm');

const cond = (v: number, b: number): Condition => ({ context: new Float32Array(b * 2 * 3).fill(v), mask: new Float32Array(b * 2).fill(1), tokens: 2, dim: 3 });

test('CFG: w = 0 gives the unconditional prediction, w = 1 the conditional one, w = 3 extrapolates', () => {
  // A model whose ε is the mean of its context: unconditional 1, conditional 2.
  const model = (z: tf.Tensor4D, _t: tf.Tensor1D, ctx: tf.Tensor3D) => tf.add(tf.mul(z, 0), tf.reshape(tf.mean(ctx, [1, 2]), [-1, 1, 1, 1])) as tf.Tensor4D;
  const z = tf.zeros([2, 2, 2, 1]) as tf.Tensor4D;
  for (const [w, want] of [[0, 1], [1, 2], [3, 4]]) {
    const g = cfgEps(model, cond(2, 2), cond(1, 2), w);
    g.eps(z, 10).dataSync().forEach((v) => assert.ok(Math.abs(v - want) < 1e-6, `w=${w}: ${v}`));
    g.dispose();
  }
});

test('DDIM inversion then DDIM sampling returns the start latents (ε smooth in z; max error ≤ 1e-2)', () => {
  const s = new DdimScheduler({ ...DDIM_SD, steps: 50 });
  const rng = new Rng(3);
  const shape: [number, number, number, number] = [2, 4, 4, 2];
  const z0 = Float32Array.from({ length: 64 }, () => rng.normal());
  // A fixed ε-model, weakly dependent on z: inversion is exact only when ε is constant along the path.
  const eps = (z: tf.Tensor4D) => tf.add(tf.mul(tf.tanh(z), 0.02), 0.3) as tf.Tensor4D;
  const zT = ddimInvert(eps, s, z0, shape);
  assert.ok(zT.some((v, i) => Math.abs(v - z0[i]) > 0.1), 'inversion moved the latents');
  const back = ddimSample(eps, s, zT, shape);
  const err = Math.max(...back.map((v, i) => Math.abs(v - z0[i])));
  assert.ok(err < 1e-2, `round-trip error ${err}`);
});
