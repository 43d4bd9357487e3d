/** The explicit denoising loops: CFG combination, and DDIM inversion undone by DDIM sampling. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { backendFromEnv, initBackend } from '../../backend/index.js';
import { DdimScheduler, DDIM_SD } from '../schedulers/ddim.js';
import { cfgEps, ddimInvert, ddimSample, type Condition } from './sample.js';
import { Rng } from '../../util/rng.js';

await initBackend(backendFromEnv());

const cond = (v: number, b: number): Condition => ({
  context: new Float32Array(b * 2 * 3).fill(v),
  mask: new Float32Array(b * 2).fill(1),
  tokens: 2,
  dim: 3,
});

test('CFG: w = 0 gives the unconditional prediction, w = 1 the conditional one, w = 3 extrapolates', async () => {
  // A model whose ε is the mean of its context: unconditional 1, conditional 2.
  const model = (z: tf.Tensor4D, _t: tf.Tensor1D, ctx: tf.Tensor3D) =>
    tf.add(tf.mul(z, 0), tf.reshape(tf.mean(ctx, [1, 2]), [-1, 1, 1, 1])) as tf.Tensor4D;
  const z = tf.zeros([2, 2, 2, 1]) as tf.Tensor4D;
  for (const [w, want] of [
    [0, 1],
    [1, 2],
    [3, 4],
  ]) {
    const g = cfgEps(model, cond(2, 2), cond(1, 2), w);
    (await g.eps(z, 10).data()).forEach((v) => assert.ok(Math.abs(v - want) < 1e-6, `w=${w}: ${v}`));
    g.dispose();
  }
});

test('DDIM inversion then DDIM sampling returns the start latents (ε smooth in z; max error ≤ 1e-2)', async () => {
  const s = new DdimScheduler({ ...DDIM_SD, steps: 50 });
  const rng = new Rng(3);
  const shape: [number, number, number, number] = [2, 4, 4, 2];
  const z0 = Float32Array.from({ length: 64 }, () => rng.normal());
  // A fixed ε-model, weakly dependent on z: inversion is exact only when ε is constant along the path.
  const eps = (z: tf.Tensor4D) => tf.add(tf.mul(tf.tanh(z), 0.02), 0.3) as tf.Tensor4D;
  const zT = await ddimInvert(eps, s, z0, shape);
  assert.ok(
    zT.some((v, i) => Math.abs(v - z0[i]) > 0.1),
    'inversion moved the latents',
  );
  const back = await ddimSample(eps, s, zT, shape);
  const err = Math.max(...back.map((v, i) => Math.abs(v - z0[i])));
  assert.ok(err < 1e-2, `round-trip error ${err}`);
});

/** The host loop the device loop replaced: ε read back each step, the update in float64. */
async function hostLoop(
  eps: (z: tf.Tensor4D, t: number) => tf.Tensor4D,
  s: DdimScheduler,
  z0: Float32Array,
  shape: [number, number, number, number],
  invert: boolean,
  rng?: Rng,
  eta = 0,
) {
  let z: Float64Array = Float64Array.from(z0);
  const stride = 20;
  const ts = invert ? s.inversionTimesteps().map((t) => t - stride) : s.timesteps;
  for (const t of ts) {
    const e = tf.tidy(() => eps(tf.tensor4d(Float32Array.from(z), shape), Math.max(0, t)));
    const ev = await e.data();
    e.dispose();
    const noise = !invert && eta > 0 ? Float64Array.from({ length: z.length }, () => rng!.normal()) : undefined;
    z = invert ? s.invertStep(ev, t, z) : s.step(ev, t, z, noise, eta);
  }
  return z;
}

test('the device loop matches the float64 host loop (η = 0 and η = 1, inversion): max error ≤ 1e-5 of max |z|', async () => {
  const s = new DdimScheduler({ ...DDIM_SD, steps: 50 });
  const shape: [number, number, number, number] = [2, 4, 4, 2];
  const z0 = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
  const eps = (z: tf.Tensor4D, t: number) => tf.add(tf.mul(tf.tanh(z), 0.5), t / 2000) as tf.Tensor4D;
  const cases: Array<[string, Float32Array, Float64Array]> = [
    ['η = 0', await ddimSample(eps, s, z0, shape), await hostLoop(eps, s, z0, shape, false)],
    [
      'η = 1',
      await ddimSample(eps, s, z0, shape, new Rng(5), 1),
      await hostLoop(eps, s, z0, shape, false, new Rng(5), 1),
    ],
    ['inversion', await ddimInvert(eps, s, z0, shape), await hostLoop(eps, s, z0, shape, true)],
  ];
  for (const [name, dev, host] of cases) {
    // float32 rounding of the update and of the η = 1 noise, relative to the latents' scale.
    const scale = Math.max(...host.map(Math.abs));
    const err = Math.max(...dev.map((v, i) => Math.abs(v - host[i]))) / scale;
    assert.ok(err <= 1e-5, `${name}: ${err} (scale ${scale})`);
    assert.ok(
      dev.some((v, i) => Math.abs(v - z0[i]) > 0.1),
      `${name}: the loop moved the latents`,
    );
  }
});
