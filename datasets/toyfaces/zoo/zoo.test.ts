/**
 * The zoo: every shipped model loads with its hash checked and runs on a few images (shapes,
 * ranges); broken files fail with one clear line; every training script runs a few steps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../../src/backend/index.js';
import { sdd, tmp } from '../../../test/helpers.js';
import { ZOO_DIR, loadParams, readCard, readWeights, zooModels } from './store.js';
import { ZOO_NAMES } from './index.js';
import { featnetFeatures, featnetLogits, HEADS } from '../models/featnet.js';
import { configOf } from '../models/configs.js';
import { renderBatch, face } from '../world.js';
import { UserError } from '../../../src/errors.js';

await initBackend('wasm');

test('every shipped model is a zoo entry and passes its hash check', () => {
  for (const name of zooModels()) assert.ok(ZOO_NAMES.includes(name), `${name} is shipped but not a zoo entry`);
  for (const name of zooModels()) {
    const { card, tensors } = readWeights(name);
    assert.equal(card.name, name);
    assert.ok(tensors.size > 0);
    assert.ok(card.weights.bytes < 8 * 2 ** 20, `${name} weights stay small (${card.weights.bytes} bytes)`);
  }
});

test('featnet runs on test images: 128-d finite features, one distribution per attribute head', async () => {
  const { card, params } = loadParams('featnet');
  const cfg = configOf('featnet', card.architecture);
  const faces = Array.from({ length: 6 }, (_, i) => face('test', i));
  const out = tf.tidy(() => {
    const x = tf.tensor4d(renderBatch(faces), [6, 32, 32, 3]);
    const f = featnetFeatures(params, x, cfg);
    return { f, probs: featnetLogits(params, f).map((l) => tf.softmax(l)) };
  });
  assert.deepEqual(out.f.shape, [6, cfg.features]);
  assert.ok((await out.f.data()).every(Number.isFinite));
  for (const [i, p] of out.probs.entries()) {
    assert.deepEqual(p.shape, [6, HEADS[i].classes]);
    const d = await p.data();
    for (let r = 0; r < 6; r++) {
      let s = 0;
      for (let c = 0; c < HEADS[i].classes; c++) s += d[r * HEADS[i].classes + c];
      assert.ok(Math.abs(s - 1) < 1e-5);
    }
  }
  tf.dispose([out.f, ...out.probs]);
  params.dispose();
});

test('missing, truncated and corrupted weights fail with one line naming the file', async () => {
  // store.ts reads SDD_ZOO_DIR at import, so redirected reads go through the CLI in a child.
  const broken = async (mutate: (weights: string) => void, re: RegExp) => {
    const zoo = tmp();
    mkdirSync(join(zoo, 'featnet'));
    copyFileSync(join(ZOO_DIR, 'featnet', 'card.json'), join(zoo, 'featnet', 'card.json'));
    copyFileSync(join(ZOO_DIR, 'featnet', 'weights.safetensors'), join(zoo, 'featnet', 'weights.safetensors'));
    mutate(join(zoo, 'featnet', 'weights.safetensors'));
    const r = await sdd(['zoo', 'verify', 'featnet'], { env: { SDD_ZOO_DIR: zoo } });
    assert.equal(r.exitCode, 1, r.all);
    assert.match(r.stdout, re);
    assert.equal(r.stdout.trim().split('\n').length, 1);
  };
  await broken(
    (w) => writeFileSync(w, readFileSync(w).subarray(0, 1000)),
    /^FAIL featnet: .*weights\.safetensors: corrupt or truncated \(1000 bytes/,
  );
  await broken((w) => {
    const b = readFileSync(w);
    b[b.length - 3] ^= 0xff;
    writeFileSync(w, b);
  }, /corrupt or truncated .*sha256/);
  await broken((w) => rmSync(w), /weights\.safetensors: missing/);
});

test('unknown model names are a usage error (exit 2) with a suggestion', async () => {
  const r = await sdd(['zoo', 'verify', 'featnett']);
  assert.equal(r.exitCode, 2);
  assert.match(r.stderr, /unknown model 'featnett' \(did you mean 'featnet'\?\)/);
  assert.ok(readCard('featnet').metrics);
  assert.throws(
    () => readCard('nope'),
    (e: Error) => e instanceof UserError && /card\.json: missing/.test(e.message),
  );
});

test('smoke: every training script runs a few steps into a scratch zoo', async () => {
  const zoo = tmp();
  const cache = tmp();
  const env = { SDD_ZOO_DIR: zoo, SDD_CACHE: cache };
  // Two `sdd zoo train` processes (one per --eval-n) rather than one per model: each CLI start
  // with its worker pool costs seconds of CPU. A process trains its models in zoo order, which is
  // dependency order (the diffusion models load the VAE, CLIP and feature net trained before them).
  const diffusion = ['ldm', 'diffae'];
  const groups = [
    { names: ZOO_NAMES.filter((n) => !diffusion.includes(n)), evalN: '200' },
    { names: ZOO_NAMES.filter((n) => diffusion.includes(n)), evalN: '16' }, // diffusion evals sample; keep them short
  ];
  for (const { names, evalN } of groups) {
    const r = await sdd(['zoo', 'train', ...names, '--steps', '3', '--train-n', '64', '--eval-n', evalN], { env });
    assert.equal(r.exitCode, 0, r.all);
    for (const name of names) assert.ok(existsSync(join(zoo, name, 'card.json')), `${name}: no card`);
  }
  // Every model of the scratch zoo verifies (exit 0 only when each one does).
  const v = await sdd(['zoo', 'verify', ...ZOO_NAMES, '--json'], { env: { SDD_ZOO_DIR: zoo } });
  assert.equal(v.exitCode, 0, v.all);
  const rows = JSON.parse(v.stdout) as Array<{ model: string; ok: boolean }>;
  assert.deepEqual(
    rows.map((x) => [x.model, x.ok]),
    ZOO_NAMES.map((n) => [n, true]),
  );
});

test('sdd zoo eval --json recomputes every card number exactly from the shipped weights', async () => {
  const r = await sdd(['zoo', 'eval', '--json'], { env: { SDD_CACHE: tmp() } });
  assert.equal(r.exitCode, 0, r.all);
  const rows = JSON.parse(r.stdout) as Array<{ model: string; reproduces: boolean }>;
  assert.deepEqual(rows.map((x) => x.model).sort(), zooModels());
  for (const row of rows) assert.equal(row.reproduces, true, row.model);
});

test('zoo train --until stops with a checkpoint; resuming ships the same weights as an unbroken run', async () => {
  const cache = tmp();
  const [broken, unbroken] = [tmp(), tmp()];
  const args = ['zoo', 'train', 'idnet', '--steps', '6', '--train-n', '64', '--eval-n', '200'];
  const stop = await sdd([...args, '--until', '3'], { env: { SDD_ZOO_DIR: broken, SDD_CACHE: cache } });
  assert.equal(stop.exitCode, 0, stop.all);
  assert.match(stop.all, /stopped at step 3\/6/);
  assert.ok(!existsSync(join(broken, 'idnet', 'card.json')), 'a stopped training ships no card');
  const state = JSON.parse(readFileSync(join(cache, 'zoo-train', 'idnet', 'state.json'), 'utf-8')) as {
    step: number;
    wall_s: number;
  };
  assert.equal(state.step, 3);
  assert.ok(state.wall_s > 0, 'the checkpoint keeps the time spent so far');

  const resume = await sdd(args, { env: { SDD_ZOO_DIR: broken, SDD_CACHE: cache } });
  assert.equal(resume.exitCode, 0, resume.all);
  assert.match(resume.all, /resuming at step 3/);
  assert.ok(!existsSync(join(cache, 'zoo-train', 'idnet')), 'the checkpoint is removed once the card is written');
  const resumed = JSON.parse(readFileSync(join(broken, 'idnet', 'card.json'), 'utf-8')) as {
    training: Record<string, unknown>;
    weights: { sha256: string };
  };
  assert.deepEqual(resumed.training.resumed_at_steps, [3]);
  assert.equal(resumed.training.wall_s_from_step, undefined, 'every step was timed');
  assert.ok((resumed.training.wall_s as number) >= state.wall_s, 'wall time sums both processes');

  const whole = await sdd(args, { env: { SDD_ZOO_DIR: unbroken, SDD_CACHE: cache } });
  assert.equal(whole.exitCode, 0, whole.all);
  const card = JSON.parse(readFileSync(join(unbroken, 'idnet', 'card.json'), 'utf-8')) as {
    training: Record<string, unknown>;
    weights: { sha256: string };
  };
  assert.equal(card.training.resumed_at_steps, undefined);
  // Batches are a function of the step and the optimizer state is checkpointed: same bits.
  assert.equal(resumed.weights.sha256, card.weights.sha256);

  const usage = await sdd(['zoo', 'train', 'idnet', 'clip', '--until', '3'], {
    env: { SDD_ZOO_DIR: tmp(), SDD_CACHE: cache },
  });
  assert.equal(usage.exitCode, 2, usage.all);
  assert.match(usage.all, /--until: name exactly one model/);
});
