/**
 * The torch twins of SDD and StyleCLIP (python/sdd_torch/methods/{sdd,styleclip}.py) against the
 * TypeScript training loops they port (src/sdd/distill.ts, baselines/styleclip.ts): 20 steps on
 * toyfaces from the same mapper init, with the same batch draws (our Rng, ported bit for bit) and
 * the same Gaussian noise (the harness's contract streams: the torch run reads them from
 * contract/in, the TS loop gets them through DistillHooks.noise instead of tf.randomNormal).
 * The torch side runs as the engine runs it: the twin's inputs() and plan() written by the
 * harness's own writeInputs, then `python -m sdd_torch run` (CPU, fp32).
 *
 * What is compared: each mapper parameter's change over the 20 steps, Δ = w₂₀ − w₀, over all
 * parameters (the weights themselves are ~1000× larger than Δ, N(0,1)/lr_mul, so comparing them
 * would hide any difference), and each step's logged loss. Both sides are float32 and use the same
 * update (HostAdam's: float64 arithmetic on float32 state); they differ in summation order and
 * libm inside the frozen models (~1e-6 relative per forward, test/torch_models.test.ts), which
 * Adam's normalised steps pass on, so ~1e-5..1e-4 relative is expected after 20 steps; see
 * DELTA_L2 / DELTA_MAX / LOSS below.
 * Then a resumed torch run (killed at its step-10 checkpoint) ends bit-identical to the first.
 * Last, the twin's HQS scan phase (plan.phase "hqs", sdd_twin.ts sddScanPlan; the engine runs it before
 * the distillation, TorchTwin.prephase) against hqsScan on the same untrained-mapper images and noise,
 * and sddPlan selecting from its output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendFromEnv, initBackend } from '../src/backend/index.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { requirePython } from '../src/util/python.js';
import { Rng, streamRng } from '../src/util/rng.js';
import { asFloat32, readSafetensors } from '../src/util/safetensors.js';
import { loadWorld } from '../src/world/registry.js';
import { contractDirs, readNpyF32, type ContractDirs, type EngineBlock } from '../src/methods/contract.js';
import { writeInputs, type InputParams } from '../src/methods/contract_in.js';
import { promptOf, trainCodes } from '../src/methods/editing.js';
import { guidancePrompt, sdd, sddPlan, sddScanInputs, sddScanPlan, type SddParams } from '../src/methods/sdd.js';
import { clipTerm, styleclip } from '../baselines/styleclip.js';
import { createMapper, distill, trainMapper, type DistillHooks } from '../src/sdd/distill.js';
import { hqsScan, type HqsScan, type ScanStats } from '../src/sdd/hqs.js';
import { applyMapper } from '../src/sdd/mapper.js';
import type { MapperSettings } from '../src/sdd/mapper.js';
import { mapperInitValues } from '../src/sdd/twin.js';
import type { Method } from '../src/methods/types.js';
import type { World } from '../src/world/types.js';
import type { Params } from '../src/nn/params.js';
import { maxDiff } from './parity.js';
import { tmp } from './helpers.js';

const PYTHON = requirePython(['torch', 'numpy']);
const PYDIR = join(PROJECT_ROOT, 'python');
const SEED = 11;
const STEPS = 20;
const PROMPT = 'hair_color:black->white';
// Δ of the mapper weights after 20 steps, over all parameters. L2: ‖Δ_torch − Δ_TS‖ ≤ DELTA_L2 ·
// ‖Δ_TS‖, measured 2.3e-5 (SDD) and 3.8e-5 (StyleCLIP, global loss), allowed 5e-4. Max: a few
// elements whose gradient nearly cancels can take Adam steps of different size (the update is
// ≈ ±lr whatever |g|), so the largest single gap is looser: measured 1.3e-3 (SDD, one element of
// 33280) and 3.0e-4 × max |Δ_TS|, allowed 1e-2. (StyleCLIP's directional loss normalises
// E_I(x') − E_I(x), nearly 0 at the start, which magnifies float32 noise: measured L2 4.3e-4.)
const DELTA_L2 = 5e-4;
const DELTA_MAX = 1e-2;
// HQS scan statistics per (t, image): N relative, and each entropy's distance from its maximum
// log(#positions) relative (the softmax of small |d| is near uniform, so H itself always agrees to
// ~1e-9; its deviation is what the normalised curve reads). Measured (K = 3, 5 timesteps, images
// G(w + 0.1·M₀(w))): N 2.6e-6, H 1.1e-5, H_full 1.5e-5; allowed 2e-4.
const HQS = 2e-4;
// Each step's logged total loss: measured ≤ 2.1e-7 relative (StyleCLIP), allowed 1e-4.
const LOSS = 1e-4;

await initBackend(backendFromEnv());

interface TwinRun {
  dirs: ContractDirs;
  plan: Record<string, unknown>;
  seconds: number;
}

/**
 * The harness's side of a torch run (runTorch without the evaluation): inputs and manifest, whose
 * engine block runs `plan` on the CPU in fp32 with the prompt's tokens, then the process; its seconds.
 */
async function runTwin(
  world: World,
  run: { id: string; method: string; params: { prompt: string } },
  plan: Record<string, unknown>,
  inputs: InputParams,
  dirs: ContractDirs,
): Promise<number> {
  const prompt = promptOf(world, run.params.prompt);
  const [text, source_text, empty] = world.contract!.tokenize([prompt.text, prompt.sourceText, '']);
  const engine: EngineBlock = {
    name: 'torch',
    precision: 'fp32',
    device: 'cpu',
    models: world.contract!.models,
    tokens: { text, source_text, empty },
    plan,
  };
  const { id, method, params } = run;
  await writeInputs(dirs, { id, seed: SEED, method, params }, world, prompt, inputs, engine);
  return python(dirs);
}

/** `method`'s torch twin run with its own plan and inputs in `dir`. */
async function torchRun<P extends { prompt: string }>(
  world: World,
  method: Method<P>,
  p: P,
  dir: string,
): Promise<TwinRun> {
  const twin = method.torch!;
  const plan = twin.plan(p, world, { seed: SEED });
  const dirs = contractDirs(dir);
  const run = { id: `parity-${method.name}`, method: method.name, params: p };
  return { dirs, plan, seconds: await runTwin(world, run, plan, twin.inputs(p, world), dirs) };
}

function python(dirs: ContractDirs): number {
  const t0 = performance.now();
  const r = spawnSync(PYTHON, ['-m', 'sdd_torch', 'run', '--contract', dirs.root], {
    encoding: 'utf-8',
    env: { ...process.env, PYTHONPATH: PYDIR },
  });
  assert.equal(r.status, 0, `python -m sdd_torch run failed:\n${r.stderr}`);
  return (performance.now() - t0) / 1000;
}

function readMapper(dirs: ContractDirs): Map<string, Float32Array> {
  const file = readSafetensors(join(dirs.out, 'mapper.safetensors'));
  return new Map([...file.tensors].map(([k, v]) => [k, asFloat32(v)]));
}

function noise(dirs: ContractDirs, name: string, shape: number[]): Float32Array {
  return readNpyF32(join(dirs.in, `noise_${name}.npy`), name, shape);
}

/** A TS mapper with the torch run's init (the `mapper_init` stream); returns it and its init values. */
function initMapper(
  world: World,
  ms: MapperSettings,
  dirs: ContractDirs,
  stream = 'mapper_init',
): { mapper: Params; init: Map<string, Float32Array> } {
  const mapper = createMapper(world, ms, 0);
  const dim = world.style!.dim;
  const init = mapperInitValues(mapper.vars.keys(), ms, noise(dirs, stream, [3, ms.layers, dim, dim]), dim);
  for (const [name, v] of mapper.vars) v.assign(tf.tensor(init.get(name)!, v.shape));
  return { mapper, init };
}

async function valuesOf(mapper: Params): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, v] of mapper.vars) out.set(name, (await v.data()) as Float32Array);
  return out;
}

/** max |Δ_torch − Δ_TS| / max |Δ_TS| over every parameter, Δ = final − init. */
function compareDeltas(
  t: { diagnostic(m: string): void },
  what: string,
  ts: Map<string, Float32Array>,
  py: Map<string, Float32Array>,
  init: Map<string, Float32Array>,
): void {
  assert.deepEqual([...py.keys()].sort(), [...ts.keys()].sort(), `${what}: the torch mapper's parameters`);
  const dTs: number[] = [];
  const dPy: number[] = [];
  for (const [name, w] of ts) {
    const w0 = init.get(name)!;
    const p = py.get(name)!;
    for (let i = 0; i < w.length; i++) {
      dTs.push(w[i] - w0[i]);
      dPy.push(p[i] - w0[i]);
    }
  }
  const { maxDiff: diff, maxRef } = maxDiff(dPy, dTs);
  const l2 = Math.hypot(...dPy.map((x, i) => x - dTs[i])) / Math.hypot(...dTs);
  t.diagnostic(
    `${what}: mapper Δ after ${STEPS} steps (${dTs.length} values): ‖Δ_torch − Δ_TS‖/‖Δ_TS‖ ${l2.toExponential(2)}; max |Δ_torch − Δ_TS| ${diff.toExponential(2)} = ${(diff / maxRef).toExponential(2)} × max |Δ_TS|`,
  );
  assert.ok(maxRef > 0, `${what}: the TS mapper did not move`);
  assert.ok(l2 <= DELTA_L2, `${what}: mapper Δ differs by ${l2} relative (L2) > ${DELTA_L2}`);
  assert.ok(diff <= DELTA_MAX * maxRef, `${what}: mapper Δ differs by ${diff} > ${DELTA_MAX} × ${maxRef}`);
}

function compareLosses(t: { diagnostic(m: string): void }, what: string, dirs: ContractDirs, ts: number[]): void {
  const lines = readFileSync(join(dirs.out, 'metrics.jsonl'), 'utf-8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; loss: number });
  assert.deepEqual(
    lines.map((l) => l.step),
    ts.map((_, i) => i),
    `${what}: metrics.jsonl steps`,
  );
  const worst = Math.max(...lines.map((l, i) => Math.abs(l.loss - ts[i]) / Math.max(Math.abs(ts[i]), 1e-12)));
  t.diagnostic(`${what}: per-step loss, max relative gap ${worst.toExponential(2)}`);
  assert.ok(worst <= LOSS, `${what}: a step's loss differs by ${worst} relative`);
}

function mapperOf(plan: Record<string, unknown>): MapperSettings {
  return plan.mapper as MapperSettings;
}

/** A resumed attempt as the harness prepares it: out/ keeps the checkpoint and the curve before it. */
function resumeFrom(first: ContractDirs, dir: string, step: number): ContractDirs {
  const dirs = contractDirs(dir);
  cpSync(first.root, dirs.root, { recursive: true });
  for (const name of readdirSync(dirs.out))
    if (name !== 'checkpoint' && name !== 'metrics.jsonl') rmSync(join(dirs.out, name), { recursive: true });
  const kept = readFileSync(join(dirs.out, 'metrics.jsonl'), 'utf-8')
    .split('\n')
    .filter((l) => l && (JSON.parse(l) as { step: number }).step < step);
  writeFileSync(join(dirs.out, 'metrics.jsonl'), kept.map((l) => `${l}\n`).join(''));
  return dirs;
}

/** A mapper-training twin's run on toyfaces and the TS side's start: the same init, the training codes. */
interface MapperTwin<P> {
  world: World;
  p: P;
  run: TwinRun;
  ms: MapperSettings;
  mapper: Params;
  init: Map<string, Float32Array>;
  trainW: tf.Tensor3D;
  /** The TS loop's per-step losses (its onStep pushes them). */
  losses: number[];
}

/** Runs `method`'s torch twin for STEPS steps (8 training, 2 eval images; `more` params) in `dir`. */
async function mapperTwin<P extends { prompt: string; train_images: number }>(
  method: Method<P>,
  more: Record<string, unknown>,
  dir: string,
): Promise<MapperTwin<P>> {
  const world = loadWorld('toyfaces');
  const p = method.params.parse({ prompt: PROMPT, iterations: STEPS, train_images: 8, eval_images: 2, ...more });
  const run = await torchRun(world, method, p, dir);
  const ms = mapperOf(run.plan);
  const { mapper, init } = initMapper(world, ms, run.dirs);
  return { world, p, run, ms, mapper, init, trainW: trainCodes(world, p.train_images), losses: [] };
}

/** The TS loop's mapper Δ and losses against the torch run's; frees the TS side. */
async function compareTwin<P>(t: { diagnostic(m: string): void }, what: string, twin: MapperTwin<P>): Promise<void> {
  compareDeltas(t, what, await valuesOf(twin.mapper), readMapper(twin.run.dirs), twin.init);
  compareLosses(t, what, twin.run.dirs, twin.losses);
  twin.trainW.dispose();
  twin.mapper.dispose();
}

test('SDD torch twin: 20 distillation steps agree with the TS loop given the same noise; a resumed run ends identical', async (t) => {
  const root = tmp('sdd-torch-sdd-');
  const twin = await mapperTwin(sdd, { checkpoint_every: 10, selection: { strategy: 'random' } }, join(root, 'a'));
  const { world, p, run } = twin;
  const [h, w, c] = world.diffusion.latentShape;
  const per = p.batch * h * w * c;
  const sds = noise(run.dirs, 'sds', [STEPS, p.batch, h, w, c]);
  const vae = noise(run.dirs, 'vae', [STEPS, p.batch, h, w, c]);
  const hooks: DistillHooks = {
    onStep: (_step, s) => void twin.losses.push(s.loss),
    noise: (step) => ({
      sds: tf.tensor4d(sds.subarray(step * per, (step + 1) * per), [p.batch, h, w, c]),
      vae: tf.tensor4d(vae.subarray(step * per, (step + 1) * per), [p.batch, h, w, c]),
    }),
  };
  const t0 = performance.now();
  await distill(
    world,
    twin.mapper,
    twin.trainW,
    guidancePrompt(p, promptOf(world, p.prompt)),
    run.plan.timesteps as number[],
    { ...p, mapper: twin.ms },
    (step) => streamRng(SEED, `step${step}`),
    hooks,
  );
  t.diagnostic(
    `TS (${tf.getBackend()}) ${STEPS} steps ${((performance.now() - t0) / 1000).toFixed(1)} s; torch run (incl. start-up) ${run.seconds.toFixed(1)} s`,
  );
  await compareTwin(t, 'sdd', twin);

  const resumed = resumeFrom(run.dirs, join(root, 'b'), 10);
  python(resumed);
  const [a, b] = [readMapper(run.dirs), readMapper(resumed)];
  for (const [name, v] of a)
    assert.deepEqual(b.get(name), v, `resumed run: ${name} differs from the uninterrupted run's`);
  assert.equal(
    readFileSync(join(resumed.out, 'metrics.jsonl'), 'utf-8'),
    readFileSync(join(run.dirs.out, 'metrics.jsonl'), 'utf-8'),
    'resumed run: the training curve',
  );
});

test('StyleCLIP torch twin: 20 mapper steps agree with the TS loop from the same init', async (t) => {
  const twin = await mapperTwin(styleclip, {}, join(tmp('sdd-torch-styleclip-'), 'a'));
  const { world, p } = twin;
  const clip = clipTerm(world, p, promptOf(world, p.prompt));
  const step = (i: number) => streamRng(SEED, `step${i}`);
  await trainMapper(world, twin.mapper, twin.trainW, { ...p, mapper: twin.ms }, clip.at, step, {
    onStep: (_step, s) => void twin.losses.push(s.loss),
  });
  await compareTwin(t, 'styleclip', twin);
  clip.dispose();
});

test('HQS scan phase of the SDD twin: per-image N, H, H_full agree with hqsScan given the same noise; sddPlan selects from it', async (t) => {
  const world = loadWorld('toyfaces');
  const p: SddParams = sdd.params.parse({
    prompt: PROMPT,
    train_images: 4,
    eval_images: 1,
    selection: { strategy: 'largest' },
    hqs: { images: 3, from: 100, to: 900, stride: 200 },
  });
  const prompt = promptOf(world, PROMPT);
  const plan = sddScanPlan(p, world);
  const dirs = contractDirs(join(tmp('sdd-torch-hqs-'), 'a'));
  await runTwin(world, { id: 'parity-hqs', method: 'sdd', params: p }, plan, sddScanInputs(p, world), dirs);
  const py = JSON.parse(readFileSync(join(dirs.out, 'hqs_scan.json'), 'utf-8')) as HqsScan;

  const timesteps = plan.timesteps as number[];
  const k = plan.images as number;
  const ms = mapperOf(plan);
  const [h, w, c] = world.diffusion.latentShape;
  const shape = [timesteps.length, k, h, w, c];
  const [sds, vae] = [noise(dirs, 'hqs_sds', shape), noise(dirs, 'hqs_vae', shape)];
  const { mapper: untrained } = initMapper(world, ms, dirs, 'hqs_mapper_init');
  const trainW = trainCodes(world, p.train_images);
  const images = tf.tidy(() =>
    world.style!.generate(
      applyMapper(untrained, tf.slice(trainW, [0, 0, 0], [k, -1, -1]) as tf.Tensor3D, world.style!, ms),
    ),
  );
  const per = k * h * w * c;
  const slice = (a: Float32Array, i: number) => tf.tensor4d(a.subarray(i * per, (i + 1) * per), [k, h, w, c]);
  const settings = { guidance: p.guidance, vae_sample: p.vae_sample, top_k_per: p.hqs.top_k_per };
  const scan = await hqsScan(
    world,
    images,
    guidancePrompt(p, prompt),
    timesteps,
    settings,
    new Rng(1),
    undefined,
    undefined,
    (i) => ({ sds: slice(sds, i), vae: slice(vae, i) }),
  );
  assert.deepEqual(py.timesteps, timesteps);
  const size = world.imageSize;
  const maxH = { N: 0, H: Math.log(size * size), H_full: Math.log(size * size * 3) };
  for (const key of ['N', 'H', 'H_full'] as const) {
    const read = (s: ScanStats) => s[key].flat().map((x) => (key === 'N' ? x : maxH[key] - x));
    const [a, b] = [read(scan.stats), read(py.stats)];
    assert.equal(b.length, a.length, `hqs ${key}: (t, image) pairs`);
    const worst = Math.max(...a.map((x, i) => Math.abs(b[i] - x) / Math.abs(x)));
    t.diagnostic(
      `hqs ${key}${key === 'N' ? '' : ' (distance from log(positions))'}: max relative gap ${worst.toExponential(2)} over ${a.length} (t, image)`,
    );
    assert.ok(worst <= HQS, `hqs ${key}: relative gap ${worst} > ${HQS}`);
  }
  // The distillation's plan from the torch scan: S = the largest-HQS t; its seconds charged to τ_train by result().
  const next = sddPlan(p, world, { seed: SEED }, py);
  assert.equal((next.timesteps as number[]).length, 1);
  assert.ok(timesteps.includes((next.timesteps as number[])[0]));
  assert.equal((next.hqs as { seconds: number }).seconds, py.seconds);
  const own = sdd.torch!.result!(p, next, { tau_train_s: 2, tau_infer_s: 0.1 });
  assert.equal(own.tau_train_s, 2 + py.seconds);
  tf.dispose([trainW, images]);
  untrained.dispose();
});

test('SDD twins: building blocks (python/tests/test_sdd.py: host Adam vs torch AdamW, top-k, mapper groups and init)', () => {
  const r = spawnSync(PYTHON, ['-m', 'unittest', 'tests.test_sdd'], {
    cwd: PYDIR,
    encoding: 'utf-8',
    env: { ...process.env, PYTHONPATH: PYDIR },
  });
  assert.equal(r.status, 0, `python/tests/test_sdd.py failed:\n${r.stderr}`);
});
