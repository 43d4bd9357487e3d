/**
 * The torch twins of the toyfaces zoo models (python/sdd_torch/models, worlds/toyfaces.py) against
 * the TypeScript models they port: the same zoo weights, the same seeded inputs, every World entry
 * point a torch method uses, and for each differentiable one the gradient of a fixed random
 * projection ⟨R, f(x)⟩ w.r.t. its input (what SDD's guidance and the baselines backpropagate).
 * Then the twins' unit tests (python/tests/test_models.py: strict loading, the padding rule).
 *
 * Tolerance: max |torch − TS| ≤ rel · max |TS| per output (test/parity.ts assertClose). Both run
 * float32 (tfjs on this test's backend, torch on CPU); they differ only in summation order and in
 * libm (exp/sin/cos, the U-Net's timestep features), so the expected gap is ~1e-6 relative for
 * forward passes and somewhat more for gradients and the deep U-Nets. Measured on the cpu / wasm
 * backends: see FWD / GRAD below (each bound ~15-25x the largest measured gap).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendFromEnv, initBackend } from '../src/backend/index.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { requirePython } from '../src/util/python.js';
import { Rng } from '../src/util/rng.js';
import { loadToyfacesWorld } from '../datasets/toyfaces/world_models.js';
import { loadParams } from '../datasets/toyfaces/zoo/store.js';
import { featnetLogits, HEADS } from '../datasets/toyfaces/models/featnet.js';
import { valuesOf, type AttributeName } from '../datasets/toyfaces/attributes.js';
import { MAX_TOKENS, tokenizeBatch } from '../datasets/toyfaces/tokenizer.js';
import { compareWithTorch, latentCases, seededTensors, x4, type ParityCase } from './torch_cases.js';

const PYTHON = requirePython(['torch', 'numpy']);
const PYDIR = join(PROJECT_ROOT, 'python');
const ZOO = join(PROJECT_ROOT, 'datasets', 'toyfaces', 'zoo');
const B = 4;
// Forward outputs: measured max |Δ|/max|TS| ≤ 1.2e-6 over the cases (worst: featnet features
// 3.5e-7, ldm eps 3.5e-7, style encode 5.4e-7, text context 4.2e-7), allowed 2e-5.
const FWD = 2e-5;
// Input gradients: measured ≤ 1.2e-6 (worst: vae decode ∂/∂z 1.15e-6, style encode ∂/∂x 1.0e-6,
// featnet ∂/∂x 8.5e-7, ldm eps ∂/∂zt 7.5e-7), allowed 3e-5.
const GRAD = 3e-5;
// Elementwise maps of stored tensors (z_sem normalise / denormalise, classifier directions):
// measured 0, allowed 1e-6.
const EXACTISH = 1e-6;

await initBackend(backendFromEnv());

const TEXTS = [
  'a face with black hair and glasses',
  '',
  'smiling',
  'a face with long curly red hair, an angry look, looking left',
];
const DIRECTIONS: { attribute: AttributeName; target: string; source?: string }[] = [
  { attribute: 'hair_color', target: 'white', source: 'black' },
  { attribute: 'expression', target: 'happy' },
];

test('torch twins of the toyfaces zoo models match the TS models (outputs and input gradients)', async (t) => {
  const world = loadToyfacesWorld();
  const featnet = loadParams('featnet');
  const { diffusion: dm, style, diffae, identity } = world;
  assert.ok(diffae && style?.encode && identity, 'toyfaces has diffae, a style encoder and an identity net');
  const styleEncode = style.encode.bind(style);
  const { normal, uniform } = seededTensors(new Rng(20261204));
  const [h, w, c] = dm.latentShape;
  const inputs: Record<string, tf.Tensor> = {
    x: uniform([B, 32, 32, 3]),
    noise: normal([B, h, w, c]),
    z: normal([B, h, w, c]),
    zt: normal([B, h, w, c]),
    t: tf.tensor1d([999, 640, 250, 1]),
    ids: tf.tensor2d(tokenizeBatch(TEXTS), [B, MAX_TOKENS]),
    w: tf.mul(normal([B, style.levels, style.dim]), 0.5),
    zsem: normal([B, diffae.encode(tf.zeros([1, 32, 32, 3])).shape[1]]),
  };
  const cond = await dm.textCondition(TEXTS);
  inputs.context = tf.tensor3d(cond.context, [B, cond.tokens, cond.dim]);
  inputs.mask = tf.tensor2d(cond.mask, [B, cond.tokens]);
  inputs.features = world.fid.features(inputs.x as tf.Tensor4D);

  const l = latentCases(dm, { vae: 'vae_', eps: 'ldm_eps' }, { rel: FWD, gradRel: GRAD });
  const cases: ParityCase[] = [
    l.encode,
    l.encodeNoise,
    l.decode,
    { name: 'clip_image', run: (i) => world.clip.imageEmbed(x4(i, 'x')), wrt: 'x', rel: FWD, gradRel: GRAD },
    { name: 'clip_text', run: () => world.clip.textEmbed(TEXTS), rel: FWD },
    l.context,
    l.mask,
    l.eps,
    { name: 'style_generate', run: (i) => style.generate(i.w as tf.Tensor3D), wrt: 'w', rel: FWD, gradRel: GRAD },
    { name: 'style_encode', run: (i) => styleEncode(x4(i, 'x')), wrt: 'x', rel: FWD, gradRel: GRAD },
    { name: 'idnet_embed', run: (i) => identity.embed(x4(i, 'x')), wrt: 'x', rel: FWD, gradRel: GRAD },
    { name: 'featnet_features', run: (i) => world.fid.features(x4(i, 'x')), wrt: 'x', rel: FWD, gradRel: GRAD },
    {
      name: 'featnet_logits',
      run: (i) => tf.concat(featnetLogits(featnet.params, i.features as tf.Tensor2D), 1),
      rel: FWD,
    },
    { name: 'diffae_encode', run: (i) => diffae.encode(x4(i, 'x')), wrt: 'x', rel: FWD, gradRel: GRAD },
    {
      name: 'diffae_eps',
      run: (i) => diffae.eps(x4(i, 'zt'), i.t as tf.Tensor1D, i.zsem as tf.Tensor2D),
      wrt: 'zt',
      rel: FWD,
      gradRel: GRAD,
    },
    { name: 'diffae_normalise', run: (i) => diffae.normalise(i.zsem as tf.Tensor2D), rel: EXACTISH },
    { name: 'diffae_denormalise', run: (i) => diffae.denormalise(i.zsem as tf.Tensor2D), rel: EXACTISH },
    {
      name: 'diffae_direction',
      run: () => tf.stack(DIRECTIONS.map((d) => diffae.direction(d.attribute, d.target, d.source))),
      rel: EXACTISH,
    },
  ];

  const meta = {
    heads: HEADS.map((hd) => hd.name),
    directions: DIRECTIONS.map((d) => {
      const values = valuesOf(d.attribute);
      return {
        attribute: d.attribute,
        target: values.indexOf(d.target),
        source: d.source === undefined ? null : values.indexOf(d.source),
      };
    }),
  };
  compareWithTorch(t, { inputs, cases, normal, script: 'models_parity.py', args: [ZOO], meta });
  world.dispose();
  featnet.params.dispose();
});

test('torch twins: strict loading and building blocks (python/tests/test_models.py)', () => {
  const r = spawnSync(PYTHON, ['-m', 'unittest', 'tests.test_models'], {
    cwd: PYDIR,
    encoding: 'utf-8',
    env: { ...process.env, PYTHONPATH: PYDIR, SDD_ZOO: ZOO },
  });
  assert.equal(r.status, 0, `python/tests/test_models.py failed:\n${r.stderr}`);
});
