/** HostAdam and DeviceAdam against tfjs's own Adam, a float64 reference of PyTorch's AdamW formula, and each other. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { backendFromEnv, initBackend } from '../backend/index.js';
import { DeviceAdam, HostAdam, type AdamOptimizer } from './adam.js';

await initBackend(backendFromEnv());

const loss = (w: tf.Variable, x: tf.Tensor) => tf.sum(tf.square(tf.sub(tf.matMul(x, w), 1)));

for (const Opt of [HostAdam, DeviceAdam]) {
  test(`${Opt.name} follows tf.train.adam step for step (same ε)`, async () => {
    const x = tf.randomNormal([16, 5], 0, 1, 'float32', 1);
    const init = tf.randomNormal([5, 3], 0, 1, 'float32', 2);
    const a = tf.variable(init.clone(), true, 'a');
    const b = tf.variable(init.clone(), true, 'b');
    const ref = tf.train.adam(0.05, 0.9, 0.999, 1e-7);
    const ours: AdamOptimizer = new Opt({ lr: 0.05, eps: 1e-7 });
    for (let i = 0; i < 25; i++) {
      ref.minimize(() => loss(a, x) as tf.Scalar, false, [a]);
      const { grads } = tf.variableGrads(() => loss(b, x) as tf.Scalar, [b]);
      await ours.apply([b], grads);
      tf.dispose(grads);
    }
    const da = await a.data();
    const db = await b.data();
    for (let i = 0; i < da.length; i++) assert.ok(Math.abs(da[i] - db[i]) < 1e-5, `${i}: ${da[i]} vs ${db[i]}`);
    tf.dispose([x, init, a, b]);
    ref.dispose();
    ours.dispose();
  });

  test(`${Opt.name} with weight decay matches a float64 AdamW reference`, async () => {
    const w0 = [0.5, -1.5, 2.0];
    const grads = [
      [0.1, -0.2, 0.3],
      [0.05, 0.4, -0.1],
      [-0.3, 0.1, 0.2],
    ];
    const [lr, b1, b2, eps, wd] = [5e-3, 0.9, 0.999, 1e-8, 2e-3];
    const w = w0.slice();
    const m = [0, 0, 0];
    const v = [0, 0, 0];
    grads.forEach((g, k) => {
      const t = k + 1;
      for (let i = 0; i < 3; i++) {
        w[i] *= 1 - lr * wd;
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2;
        w[i] -= (lr * m[i]) / (1 - b1 ** t) / (Math.sqrt(v[i] / (1 - b2 ** t)) + eps);
      }
    });
    const variable = tf.variable(tf.tensor1d(w0), true, 'w');
    const opt: AdamOptimizer = new Opt({ lr, weightDecay: wd });
    for (const g of grads) await opt.apply([variable], { w: new Float32Array(g) });
    const got = await variable.data();
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(got[i] - w[i]) < 1e-6, `${got[i]} vs ${w[i]}`);
    assert.equal(opt.step, 3);
    variable.dispose();
    opt.dispose();
  });
}

test('DeviceAdam and HostAdam agree after a checkpoint round trip through getState/setState (≤ 1e-6)', async () => {
  const x = tf.randomNormal([16, 5], 0, 1, 'float32', 3);
  const init = tf.randomNormal([5, 3], 0, 1, 'float32', 4);
  const run = async (opt: AdamOptimizer, w: tf.Variable, steps: number) => {
    for (let i = 0; i < steps; i++) {
      const { grads } = tf.variableGrads(() => loss(w, x) as tf.Scalar, [w]);
      await opt.apply([w], grads);
      tf.dispose(grads);
    }
  };
  const a = tf.variable(init.clone(), true, 'ha');
  const host = new HostAdam({ lr: 0.02 });
  await run(host, a, 10);
  const b = tf.variable(init.clone(), true, 'hb');
  const first = new DeviceAdam({ lr: 0.02 });
  await run(first, b, 4);
  // The state crosses as flat host arrays, as a checkpoint stores it.
  const saved = await first.getState();
  first.dispose();
  const resumed = new DeviceAdam({ lr: 0.02 });
  resumed.setState({
    step: saved.step,
    m: new Map([...saved.m].map(([k, m]) => [k, m.slice()])),
    v: new Map([...saved.v].map(([k, v]) => [k, v.slice()])),
  });
  await run(resumed, b, 6);
  const [da, db] = [await a.data(), await b.data()];
  for (let i = 0; i < da.length; i++) assert.ok(Math.abs(da[i] - db[i]) < 1e-6, `${i}: ${da[i]} vs ${db[i]}`);
  assert.equal(resumed.step, 10);
  tf.dispose([x, init, a, b]);
  resumed.dispose();
});
