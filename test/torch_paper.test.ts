/**
 * The paper's worlds on the torch engine (#31). paper-random-tiny hands its models over through
 * its WorldContract (datasets/paper/contracts.ts): TS's seeded random weights written in PyTorch's
 * layout into the run's cache (SDD_CACHE/torch-weights/<sha256>.safetensors), so both engines
 * compute with the same weights. `make table1-paper WORLD=paper-random-tiny PROFILE=tiny` (the run of
 * experiments/paper/{sdd,sdedit,ddib,styleclip}.yaml, then its combined page) on one prompt, each
 * method on tfjs and on torch (CPU), compared run by run:
 * - SDEdit and DDIB compute the same images on both engines: the Inception features of the edits
 *   and of the originals (G(w) of the same codes), the per-image CLIP and identity scores and the
 *   metrics must agree within the bounds below;
 * - SDD and StyleCLIP train from the harness's noise streams on torch and from tfjs's own on tfjs
 *   (another draw, like another seed): the originals must agree as above (same generator, same
 *   codes), the edits must differ from them (they edit) and every metric be finite; their numbers
 *   are printed side by side.
 * The torch runs' harness never builds SD's UNet, VAE or text encoder (only the tfjs runs need them).
 * Then the weight files' round trip (torchLayout ∘ loadTorchWeights is the identity) and
 * paper-random's seeded path (no files; the contract as world.ts writes it, at tiny widths) in
 * Python: every model built, finite, deterministic per seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { requirePython } from '../src/util/python.js';
import { sha256File } from '../src/util/hash.js';
import { asFloat32, readSafetensors } from '../src/util/safetensors.js';
import { loadTorchWeights, writeTorchWeights } from '../src/nn/torch_weights.js';
import { randomStyleGan2, STYLEGAN2_TORCH_LAYOUT } from '../src/nn/stylegan2.js';
import { randomIrSe50 } from '../src/nn/arcface.js';
import type { Params } from '../src/nn/params.js';
import { ClipTokenizer } from '../src/nn/clip_tokenizer.js';
import { parseSchedulerConfig } from '../src/diffusion/schedulers/config.js';
import { seededContract } from '../datasets/paper/contracts.js';
import { SD_BUILT } from '../datasets/paper/lazy_sd.js';
import { assertClose } from './parity.js';
import { execa } from 'execa';
import { tmp } from './helpers.js';

const PYTHON = requirePython(['torch', 'numpy']);
// Inception features of the same images from the two engines: measured max |Δ|/max|tfjs| 1.4e-6
// (DDIB edits), 6.4e-7 (SDEdit edits), 4.8e-7 (originals); allowed 1e-4 (the images agree to
// ~1e-6, test/torch_baselines.test.ts; the features of random Inception weights amplify little).
const FEATURES_REL = 1e-4;
// Per-image CLIP directional / CLIP score / identity: measured |Δ| ≤ 1.4e-4 on CLIP scores of
// ~10 (1.3e-5 relative), ≤ 1e-6 on the others; allowed 1e-4 · max(1, |v|).
const ITEM_REL = 1e-4;
// Metrics (FID of 2 images, means of the above): measured ≤ 2.3e-6 relative; allowed
// 1e-3 · max(1, |v|), methods.test.ts's bound for the toyfaces table on both engines.
const METRIC_REL = 1e-3;
// An edit moves the image: mean |f(edited) − f(original)| / mean |f(original)| of the Inception
// features; 0 exactly for a no-op, measured 0.0088–0.28 on these runs.
const MIN_FEATURE_CHANGE = 1e-3;

type Metrics = Record<string, unknown>;
interface Run {
  dir: string;
  method: string;
  engine: string;
  metrics: Metrics;
  items: Record<string, unknown>;
  features: { edited: Float32Array; original: Float32Array; dims: number };
}

function readRun(dir: string): Run {
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf-8')) as {
    method: { name: string };
    engine?: { name: string };
  };
  const st = readSafetensors(join(dir, 'artifacts', 'features.safetensors'));
  const edited = st.tensors.get('edited')!;
  return {
    dir,
    method: config.method.name,
    engine: config.engine?.name ?? 'tfjs',
    metrics: (JSON.parse(readFileSync(join(dir, 'result.json'), 'utf-8')) as { metrics: Metrics }).metrics,
    items: JSON.parse(readFileSync(join(dir, 'artifacts', 'items.json'), 'utf-8')) as Record<string, unknown>,
    features: { edited: asFloat32(edited), original: asFloat32(st.tensors.get('original')!), dims: edited.shape[1] },
  };
}

/** Per image: mean |f(edited) − f(original)| / mean |f(original)|. */
function featureChange(r: Run): number[] {
  const { edited, original, dims } = r.features;
  return Array.from({ length: edited.length / dims }, (_, i) => {
    let d = 0;
    let o = 0;
    for (let k = i * dims; k < (i + 1) * dims; k++) {
      d += Math.abs(edited[k] - original[k]);
      o += Math.abs(original[k]);
    }
    return d / o;
  });
}

const num = (v: unknown) => (typeof v === 'number' ? v : NaN);
const near = (a: number, b: number, rel: number) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(a));

test('paper-random-tiny on the torch engine: SDEdit and DDIB equal to tfjs, SDD and StyleCLIP run and edit (same weights files, same codes)', async (t) => {
  const dir = tmp('sdd-torch-paper-');
  const cache = join(dir, 'cache');
  const store = join(dir, 'store');
  const reports = join(dir, 'reports');
  // `make table1-paper` on paper-random-tiny (its run, then its combined report): one prompt, both
  // engines in one plan (two job slots share the CPU); the torch twins on the CPU.
  const sweep = 'sweep={method.params.prompt: [white_hair], engine: [tfjs, torch]}';
  const env = {
    SDD_CACHE: cache,
    SDD_PYTHON: PYTHON,
    SDD_TORCH_DEVICE: 'cpu',
    SDD_DEVICE_LOCKS: join(dir, 'locks'),
    SDD_CHECKPOINTS: '',
    SDD_RUNS: store,
    SDD_REPORTS: reports,
    SDD_BACKEND: 'wasm',
    SDD_FORBID_SYNC_READS: '1',
  };
  const make = ['-s', 'table1-paper', 'WORLD=paper-random-tiny', 'PROFILE=tiny', `SET=${sweep}`, 'JOBS=2'];
  const r = await execa('make', make, { cwd: PROJECT_ROOT, env, reject: false, all: true });
  assert.equal(r.exitCode, 0, String(r.all).slice(-3000));
  // Its page: one results table over the four files' runs, a row per method and engine (runs on two
  // engines are two rows, never pooled as replicates).
  assert.ok(existsSync(join(reports, 'table1-paper', 'index.html')), 'the combined page');
  const rows = readFileSync(join(reports, 'table1-paper', 'results.csv'), 'utf-8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(',')[0]);
  const methods = ['sdd', 'sdedit', 'ddib', 'styleclip'];
  assert.deepEqual(
    rows,
    methods.flatMap((m) => [`${m} engine=tfjs`, `${m} engine=torch/fp32`]),
  );
  const runs = readdirSync(store)
    .filter((d) => !d.startsWith('.'))
    .map((d) => readRun(join(store, d)));
  assert.equal(runs.length, 8, 'four methods × two engines');
  // A torch run's harness evaluates with Inception, CLIP and ArcFace: it never builds SD's models
  // (datasets/paper/lazy_sd.ts writes SD_BUILT to the run's output.txt when it does; SDEdit on tfjs must).
  for (const run of runs) {
    const built = readFileSync(join(run.dir, 'output.txt'), 'utf-8').includes(SD_BUILT);
    if (run.engine === 'torch' || run.method === 'sdedit') assert.equal(built, run.engine === 'tfjs', run.dir);
  }
  const pair = (method: string) =>
    ['tfjs', 'torch'].map((e) => runs.find((x) => x.method === method && x.engine === e)!) as [Run, Run];

  for (const method of ['sdedit', 'ddib', 'sdd', 'styleclip']) {
    const [a, b] = pair(method);
    assert.ok(a && b, `${method}: a run on each engine`);
    const line = ['fid', 'clip_directional', 'clip_score', 'identity', 'tau_infer_s']
      .map((m) => `${m} ${num(a.metrics[m]).toPrecision(4)}/${num(b.metrics[m]).toPrecision(4)}`)
      .join(', ');
    process.stdout.write(`# ${method} tfjs/torch: ${line}\n`);
    for (const run of [a, b]) {
      for (const m of ['fid', 'clip_directional', 'clip_score', 'identity', 'tau_infer_s', 'tau_train_s'])
        assert.ok(Number.isFinite(run.metrics[m]), `${method} ${run.engine} ${m}: ${run.metrics[m]}`);
      const change = featureChange(run);
      t.diagnostic(`${method} ${run.engine}: feature change ${change.map((c) => c.toFixed(4)).join(', ')}`);
      assert.ok(
        Math.min(...change) > MIN_FEATURE_CHANGE,
        `${method} ${run.engine} does not edit: feature change ${change}`,
      );
    }
    // The same codes through the same generator weights on both engines.
    assertClose(t, `${method} originals' features`, b.features.original, a.features.original, FEATURES_REL);
    if (method === 'sdd' || method === 'styleclip') {
      assert.ok(num(b.metrics.tau_train_s) > 0, `${method} torch: τ_train measured`);
      continue;
    }
    assertClose(t, `${method} edits' features`, b.features.edited, a.features.edited, FEATURES_REL);
    for (const k of ['clip_directional', 'clip_score', 'identity']) {
      const [x, y] = [a.items[k] as number[], b.items[k] as number[]];
      assert.equal(x.length, y.length);
      x.forEach((v, i) => assert.ok(near(v, y[i], ITEM_REL), `${method} image ${i} ${k}: tfjs ${v}, torch ${y[i]}`));
    }
    for (const m of ['fid', 'clip_directional', 'clip_score', 'identity']) {
      assert.ok(
        near(num(a.metrics[m]), num(b.metrics[m]), METRIC_REL),
        `${method} ${m}: tfjs ${a.metrics[m]}, torch ${b.metrics[m]}`,
      );
    }
  }

  // What the torch runs were handed: the cache's files, named by their hash, and nothing in the repository.
  const manifest = JSON.parse(
    readFileSync(join(pair('sdedit')[1].dir, 'contract', 'in', 'manifest.json'), 'utf-8'),
  ) as { engine: { models: Record<string, { weights: string; sha256: string }> } };
  assert.deepEqual(Object.keys(manifest.engine.models).sort(), [
    'arcface',
    'clip',
    'stylegan2',
    'text_encoder',
    'unet',
    'vae',
  ]);
  for (const [name, m] of Object.entries(manifest.engine.models)) {
    assert.equal(m.weights, join(cache, 'torch-weights', `${m.sha256}.safetensors`), name);
    assert.equal(sha256File(m.weights), m.sha256, name);
  }
});

test('torch-layout weight files: written and read back (loadTorchWeights) they are the store, for StyleGAN2 (NCHW buffers, batched kernels) and IR-SE', async () => {
  await initBackend('wasm');
  const dir = tmp('sdd-torch-layout-');
  const g = randomStyleGan2(
    { size: 16, styleDim: 8, nMlp: 2, channelMultiplier: 2, lrMlp: 0.01, channels: { 4: 8, 8: 8, 16: 4 } },
    3,
  );
  const ir = randomIrSe50(4, [
    [1, 16],
    [1, 16],
    [1, 32],
    [1, 32],
  ]);
  const same = async (p: Params, back: Params) => {
    assert.deepEqual([...back.vars.keys()].sort(), [...p.vars.keys()].sort());
    for (const [name, v] of p.vars) {
      const w = back.vars.get(name)!;
      assert.deepEqual(w.shape, v.shape, name);
      assert.deepEqual(await w.data(), await v.data(), name);
    }
  };
  const gFile = await writeTorchWeights(dir, g.params, STYLEGAN2_TORCH_LAYOUT);
  const st = readSafetensors(gFile.weights);
  // PyTorch's layout: [1, O, I, k, k] modulated kernels, NCHW constant input.
  assert.deepEqual(st.tensors.get('conv1.conv.weight')!.shape, [1, 8, 8, 3, 3]);
  assert.deepEqual(st.tensors.get('input.input')!.shape, [1, 8, 4, 4]);
  assert.equal(
    (await writeTorchWeights(dir, g.params, STYLEGAN2_TORCH_LAYOUT)).weights,
    gFile.weights,
    'equal weights, one file',
  );
  await same(g.params, loadTorchWeights(gFile.weights, { nchw: STYLEGAN2_TORCH_LAYOUT.nchw }));
  await same(ir, loadTorchWeights((await writeTorchWeights(dir, ir)).weights));
  g.dispose();
  ir.dispose();
  tf.disposeVariables();
});

test("paper-random's seeded path (no weights files): the contract seededContract writes, built by python/sdd_torch/worlds/paper.py, deterministic per seed", () => {
  // paper-random's contract at paper-random-tiny's architectures (at full size the same code, 4.4 GB of weights).
  const sched = join(PROJECT_ROOT, 'datasets', 'paper', 'configs', 'tiny', 'scheduler.json');
  const scheduler = parseSchedulerConfig(readFileSync(sched, 'utf-8'), sched);
  const tokenizer = ClipTokenizer.fromFolder(join(PROJECT_ROOT, 'datasets', 'paper', 'tokenizer'));
  const models = (seed: number) => seededContract('tiny', scheduler, tokenizer, seed).models;
  for (const [name, m] of Object.entries(models(1)))
    assert.ok(m.weights === null && m.sha256 === null && Number.isInteger(m.architecture.seed), name);
  const script = `
import json, sys, torch
from sdd_torch.worlds.paper import World
def outputs(specs):
    w = World("paper-random", specs, torch.device("cpu"))
    codes = torch.randn(2, w.style.levels, w.style.dim, generator=torch.Generator().manual_seed(0))
    x = w.style.generate(codes)
    ids = torch.tensor(json.loads(sys.argv[3]), dtype=torch.int64)
    return [x, w.identity.embed(x), w.encode(x), w.text_condition(ids)[0], w.clip.text_embed(ids)]
one, two = json.loads(sys.argv[1]), json.loads(sys.argv[2])
a, b, c = outputs(one), outputs(one), outputs(two)
print(json.dumps({"same": all(torch.equal(p, q) for p, q in zip(a, b)), "differ": all(not torch.equal(p, q) for p, q in zip(a, c)),
                  "finite": all(bool(torch.isfinite(p).all()) for p in a), "image": list(a[0].shape)}))
`;
  const ids = seededContract('tiny', scheduler, tokenizer, 1).tokenize(['a face with white hair']);
  const r = spawnSync(
    PYTHON,
    ['-c', script, JSON.stringify(models(1)), JSON.stringify(models(2)), JSON.stringify(ids)],
    { encoding: 'utf-8', env: { ...process.env, PYTHONPATH: join(PROJECT_ROOT, 'python') } },
  );
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim()) as { same: boolean; differ: boolean; finite: boolean; image: number[] };
  assert.deepEqual(out, { same: true, differ: true, finite: true, image: [2, 32, 32, 3] });
});
