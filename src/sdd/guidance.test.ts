/**
 * The SDS gradient against its definition, both injections (custom gradient, surrogate ⟨g, z⟩)
 * against each other through a generator and an encoder, top-k, and the LevelsMapper's
 * EqualLinear semantics. A small differentiable stand-in world keeps this independent of the zoo.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { PROJECT_ROOT } from '../util/env.js';
import { backendFromEnv, initBackend } from '../backend/index.js';
import { alphasCumprod, SD_SCHEDULE } from '../diffusion/schedulers/schedule.js';
import { Params } from '../nn/params.js';
import type { DiffusionModels } from '../world/types.js';
import { SD_SCHEDULER } from '../diffusion/schedulers/ddim.js';
import {
  GUIDANCE_DEFAULTS,
  guidanceCondition,
  sdsGradient,
  sdsInjection,
  sdsSurrogate,
  topKMagnitude,
} from './guidance.js';
import { applyMapper, equalLinear, levelsMapper, MAPPER_DEFAULTS, pixelNorm } from './mapper.js';

await initBackend(backendFromEnv());

// ε(z, t, c) = tanh(z)·0.5 + mean(context) per sample; encode = 2×2 average pool ×3.
const diffusion: DiffusionModels = {
  scheduler: SD_SCHEDULER,
  alphasCumprod: alphasCumprod(SD_SCHEDULE),
  latentShape: [2, 2, 1],
  encode: (x) => tf.mul(tf.avgPool(tf.mean(x, 3, true) as tf.Tensor4D, 2, 2, 'valid'), 3) as tf.Tensor4D,
  decode: (z) => z,
  textCondition: async (texts) => ({
    context: Float32Array.from(texts.flatMap((t) => [t.length / 10, t.length / 10])),
    mask: new Float32Array(texts.length).fill(1),
    tokens: 1,
    dim: 2,
  }),
  eps: (zt, _t, ctx) =>
    tf.add(tf.mul(tf.tanh(zt), 0.5), tf.reshape(tf.mean(ctx, [1, 2]), [-1, 1, 1, 1])) as tf.Tensor4D,
};

test('g = (1 − ᾱ_t)(ε_u + s(ε_c − ε_u) − ε), computed by hand (abs. err ≤ 1e-5); zero noise type; source text as the base branch', async () => {
  const z = tf.tensor4d([0.3, -0.2, 0.1, 0.5, -1, 0.7, 0.2, 0], [2, 2, 2, 1]);
  const noise = tf.tensor4d([0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7, 0.8], [2, 2, 2, 1]);
  const cond = await guidanceCondition(diffusion, { text: 'a face', negative: '' }, 2);
  const t = 500;
  const a = diffusion.alphasCumprod[t];
  const g = await sdsGradient(diffusion, z, t, cond, noise, { ...GUIDANCE_DEFAULTS, guidance_scale: 7.5 }).data();
  const zv = await z.data();
  const nv = await noise.data();
  zv.forEach((zi, i) => {
    const zt = Math.sqrt(a) * zi + Math.sqrt(1 - a) * nv[i];
    const eu = Math.tanh(zt) * 0.5; // "" has mean context 0
    const ec = Math.tanh(zt) * 0.5 + 0.6; // 'a face' = 6 characters → 0.6
    const want = (1 - a) * (eu + 7.5 * (ec - eu) - nv[i]);
    assert.ok(Math.abs(g[i] - want) < 1e-5, `${g[i]} vs ${want}`);
  });
  const g0 = await sdsGradient(diffusion, z, t, cond, noise, {
    ...GUIDANCE_DEFAULTS,
    guidance_scale: 1,
    noise: 'zero',
  }).data();
  zv.forEach((zi, i) => assert.ok(Math.abs(g0[i] - (1 - a) * (Math.tanh(Math.sqrt(a) * zi) * 0.5 + 0.6)) < 1e-5));
  // Source text as ε̂'s base branch: 'a face, neutral' (15 characters) → 1.5 in place of "".
  const directional = await guidanceCondition(diffusion, { text: 'a face', negative: 'a face, neutral' }, 2);
  const gd = await sdsGradient(diffusion, z, t, directional, noise, {
    ...GUIDANCE_DEFAULTS,
    guidance_scale: 7.5,
  }).data();
  zv.forEach((zi, i) => {
    const zt = Math.sqrt(a) * zi + Math.sqrt(1 - a) * nv[i];
    const want = (1 - a) * (Math.tanh(zt) * 0.5 + 1.5 + 7.5 * (0.6 - 1.5) - nv[i]);
    assert.ok(Math.abs(gd[i] - want) < 1e-5, `source base: ${gd[i]} vs ${want}`);
  });
  directional.context.dispose();
  directional.mask.dispose();
});

test('custom-gradient injection and surrogate ⟨g, z⟩ give the same mapper gradients (rel. 1e-5)', async () => {
  const mapper = new Params(7);
  const style = {
    groups: { coarse: [0, 1], medium: [1, 2], fine: [2, 3] } as Record<'coarse' | 'medium' | 'fine', [number, number]>,
  };
  const settings = { ...MAPPER_DEFAULTS, levels: { coarse: true, medium: true, fine: true } };
  const w = tf.randomNormal([2, 3, 8], 0, 1, 'float32', 1) as tf.Tensor3D;
  // A generator: W+ → 4×4×3 image through a fixed random linear map.
  const gw = tf.randomNormal([24, 48], 0, 0.3, 'float32', 2);
  const generate = (ww: tf.Tensor3D) =>
    tf.sigmoid(tf.reshape(tf.matMul(tf.reshape(ww, [2, 24]), gw), [2, 4, 4, 3])) as tf.Tensor4D;
  tf.tidy(() => void levelsMapper(mapper, w, style, settings));
  const cond = await guidanceCondition(diffusion, { text: 'red hair', negative: '' }, 2);
  const noise = tf.randomNormal([2, 2, 2, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
  const s = { ...GUIDANCE_DEFAULTS, top_k: 5 };
  const a = tf.variableGrads(
    () =>
      sdsInjection(diffusion, 300, cond, noise, s)(diffusion.encode(generate(applyMapper(mapper, w, style, settings)))),
    mapper.list(),
  ).grads;
  const z = diffusion.encode(generate(applyMapper(mapper, w, style, settings)));
  const g = sdsGradient(diffusion, z, 300, cond, noise, s);
  const b = tf.variableGrads(
    () => sdsSurrogate(g, diffusion.encode(generate(applyMapper(mapper, w, style, settings)))),
    mapper.list(),
  ).grads;
  let nonzero = 0;
  for (const v of mapper.list()) {
    const x = await a[v.name].data();
    const y = await b[v.name].data();
    const scale = Math.max(1e-12, ...y.map(Math.abs));
    x.forEach((xi, i) => assert.ok(Math.abs(xi - y[i]) <= 1e-5 * scale, `${v.name}[${i}]: ${xi} vs ${y[i]}`));
    if (scale > 1e-9) nonzero++;
  }
  assert.ok(nonzero > 0, 'gradients reach the mapper');
});

test('top-k keeps exactly the k largest magnitudes across the batch', async () => {
  const g = tf.tensor4d([0.1, -5, 3, 0.2, -0.3, 4, -2, 1], [2, 2, 2, 1]);
  assert.deepEqual(
    [...(await topKMagnitude(g, 3).data())].map((v) => v + 0),
    [0, -5, 3, 0, 0, 4, 0, 0],
  ); // + 0: −0 → 0
  assert.deepEqual([...(await topKMagnitude(g, 100).data())], [...(await g.data())]);
});

test('top-k per image keeps the k largest magnitudes of each image', async () => {
  const g = tf.tensor4d([0.1, -5, 3, 0.2, -0.3, 4, -2, 1], [2, 2, 2, 1]);
  assert.deepEqual(
    [...(await topKMagnitude(g, 2, true).data())].map((v) => v + 0),
    [0, -5, 3, 0, 0, 4, -2, 0],
  );
});

test("PixelNorm across the group's levels (released LevelsMapper) and per level match NumPy (abs. 1e-5); the mapper uses the chosen axis", async () => {
  const fx = JSON.parse(readFileSync(join(PROJECT_ROOT, 'test/fixtures/sdd/pixelnorm.json'), 'utf-8')) as {
    shape: [number, number, number];
    x: number[];
    across_levels: number[];
    per_level: number[];
  };
  const x = tf.tensor3d(fx.x, fx.shape);
  const across = await pixelNorm(x, 1).data();
  const per = await pixelNorm(x, -1).data();
  fx.across_levels.forEach((v, i) => assert.ok(Math.abs(across[i] - v) < 1e-5, `across[${i}] ${across[i]} vs ${v}`));
  fx.per_level.forEach((v, i) => assert.ok(Math.abs(per[i] - v) < 1e-5, `per[${i}] ${per[i]} vs ${v}`));
  // The two axes give different mapper outputs for the same weights (a no-op switch would not).
  const style = {
    groups: { coarse: [0, 0], medium: [0, 3], fine: [3, 3] } as Record<'coarse' | 'medium' | 'fine', [number, number]>,
  };
  const run = (axis: 'across_levels' | 'per_level') =>
    levelsMapper(new Params(3), x, style, {
      ...MAPPER_DEFAULTS,
      levels: { coarse: false, medium: true, fine: false },
      pixel_norm: axis,
    }).data();
  const [a, b] = [await run('across_levels'), await run('per_level')];
  assert.ok(
    a.some((v, i) => Math.abs(v - b[i]) > 1e-3),
    'axes differ',
  );
  assert.equal(MAPPER_DEFAULTS.pixel_norm, 'across_levels');
});

test('EqualLinear: raw weights ~ N(0, 1/lr_mul²), effective weights scaled by lr_mul/√in; fused leaky ReLU ×√2', async () => {
  const p = new Params(11);
  const x = tf.randomNormal([4, 64], 0, 1, 'float32', 5) as tf.Tensor2D;
  const y = await equalLinear(p, 'l', x, 64, 0.01).data();
  const w = p.vars.get('l.weight')!;
  const std = Math.sqrt((await tf.moments(w).variance.data())[0]);
  assert.ok(Math.abs(std - 100) < 5, `raw weight std ${std}`);
  const pre = await tf.matMul(x, tf.mul(w, 0.01 / 8)).data();
  pre.forEach((v, i) => assert.ok(Math.abs(y[i] - Math.SQRT2 * (v > 0 ? v : 0.2 * v)) < 1e-4));
  // Disabled groups output zeros: only enabled levels move.
  const style = {
    groups: { coarse: [0, 2], medium: [2, 3], fine: [3, 4] } as Record<'coarse' | 'medium' | 'fine', [number, number]>,
  };
  const m = (await levelsMapper(
    new Params(1),
    tf.randomNormal([2, 4, 8], 0, 1, 'float32', 9) as tf.Tensor3D,
    style,
    MAPPER_DEFAULTS,
  ).array()) as number[][][];
  for (const row of m) {
    assert.ok(row[0].every((v) => v === 0) && row[1].every((v) => v === 0), 'coarse off');
    assert.ok(row[2].some((v) => v !== 0) && row[3].some((v) => v !== 0), 'medium and fine on');
  }
});
