/**
 * Memory over whole method runs (issue #32): a quick run of every method a world supports (SDD,
 * SDEdit, DDIB, DiffAE and StyleCLIP on toyfaces; SDD, SDEdit, DDIB and StyleCLIP on
 * paper-random-tiny), in process through the method's own run() as the tfjs engine calls it, on
 * wasm and on webgpu (lavapipe in CI). Per world and backend the world's models are loaded first
 * (warmUp: as a run loads them, SD built), then every method runs once: the live tensor count
 * after its run equals the count before it (exactly: a leak of one tensor per run fails, and so
 * does a first run that keeps tensors: a stricter check than the run 2 vs run 1 comparison this
 * file made until 2026-12-05, which paid a second run per method); within each run the count is
 * the same at every progress step of one phase (HQS scan steps, distillation or training
 * iterations: a leak per step fails); on webgpu the pool stays within its budget (POOL_MB,
 * STAGING_MB, small so that it evicts) at every progress step. Leaks it found and that are fixed:
 * StyleCLIP's prompt embeddings (4 tensors a run on toyfaces, 139 on paper-random-tiny, whose CLIP
 * text tower had no tidy) and DeviceAdam's initial moments (32 a run on webgpu). Each run's peak
 * (deviceMemory().peak_bytes) is printed. The runs are shrunk below the experiment files'
 * quick/tiny profiles (SHRINK: batch 1, 2 steps or iterations, 2 images evaluated: FID's
 * covariance needs 2).
 *
 * make test runs: wasm, every method of both worlds; webgpu, SDD (its HQS scan, distillation
 * iterations and evaluation) and StyleCLIP on toyfaces (webgpu_memory.test.ts checks only the DDIM
 * loops step by step on webgpu). SDD_LEAK_ALL=1 adds the rest on webgpu. Measured 2026-12-05 on 2 cores
 * (load ~4), CPU seconds per run: wasm toyfaces 0.3–1.1 (3.7 with the world's loading),
 * paper-random-tiny 3.1–4.3 (15.8 with loading); lavapipe toyfaces SDD 7.2; the file 28–29 s
 * wall, 26–29 CPU-s (before: toyfaces only, two runs each, ~23 s wall idle, 35–46 CPU-s).
 * Opt-in, CPU-s a run on lavapipe (after SDD's): toyfaces SDEdit 3.3, DDIB 7.2, DiffAE 5.8;
 * paper-random-tiny SDD 60 (95 s wall; a second SDD run ~35 CPU-s, 28 of them
 * evaluating), SDEdit 28, DDIB 35, StyleCLIP 33 (SDD_LEAK_ALL's whole webgpu test: 265 s wall at
 * load ~4). After Inception's BatchNorm fold became once per store (Params.memo), on an idle
 * machine: SDD_LEAK_ALL=1's whole file 94 s wall, 154 CPU-s; lavapipe paper-random-tiny 63 s wall
 * for its four methods (27.6–30.6 CPU-s a run), toyfaces 16.7 s for all five (StyleCLIP 5.1 CPU-s).
 * Why paper-random-tiny costs that: every run evaluates 4 images with the full-size FID
 * Inception-v3 at 299² (5.7 GFLOP an image; the world keeps pytorch-fid's architecture, so its
 * FID is the paper's computation): ~0.6 CPU-s an image on wasm (~75% of a run), ~6 on lavapipe,
 * whose conv and matMul programs alike run at ~1 GFLOP/s here (a 1.5 GFLOP matMul: 0.7 CPU-s,
 * 0.05 on wasm).
 * Without a WebGPU adapter the webgpu test skips with the reason; wasm runs everywhere.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { deviceMemory, initBackend, poolCounters, resetPeakMemory, shutdownBackend } from '../src/backend/index.js';
import { loadExperiment } from '../src/experiments/load.js';
import { expandExperiment } from '../src/experiments/expand.js';
import { registerBuiltinMethods } from '../src/methods/index.js';
import { getMethod } from '../src/methods/registry.js';
import { makeContext } from '../src/exec/context.js';
import { loadWorld } from '../src/world/registry.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { cpuSeconds } from '../src/util/calibration.js';
import { tmp, webgpuSkipReason } from './helpers.js';

const POOL_MB = 4;
const STAGING_MB = 0.25;
process.env.SDD_WEBGPU_POOL_MB = String(POOL_MB);
process.env.SDD_WEBGPU_STAGING_MB = String(STAGING_MB);
process.env.SDD_CACHE = tmp('sdd-leaks-cache-');
// The runs time their phases under a machine-wide device lock; a private one keeps them from
// waiting on other test files' runs (the timings are not what is tested here).
process.env.SDD_DEVICE_LOCKS = tmp('sdd-leaks-locks-');
const MIB = 1024 * 1024;

/** Per method: the shrinking --set overrides (params each method has). */
const SHRINK: Record<string, string[]> = {
  sdd: [
    'method.params.iterations=2',
    'method.params.batch=1',
    'method.params.eval_images=2',
    'method.params.train_images=1',
    'method.params.hqs.images=1',
    'method.params.hqs.stride=900',
  ],
  sdedit: ['method.params.eval_images=2', 'method.params.steps=2', 'method.params.batch=2'],
  ddib: ['method.params.eval_images=2', 'method.params.steps=2', 'method.params.batch=2'],
  diffae: ['method.params.eval_images=2', 'method.params.steps=2'],
  styleclip: [
    'method.params.eval_images=2',
    'method.params.iterations=2',
    'method.params.batch=1',
    'method.params.train_images=1',
  ],
};

/**
 * The experiment files per world, the profile that selects the world's small setting, and the
 * methods make test runs on webgpu (SDD_LEAK_ALL=1: all): SDD, whose run has the HQS scan, the
 * mapper's training and the evaluation, and StyleCLIP (its CLIP and identity losses through the
 * same optimiser); SDEdit, DDIB and DiffAE's DDIM loops are leak-tested per step on webgpu by
 * webgpu_memory.test.ts.
 */
const WORLDS = [
  {
    world: 'toyfaces',
    profile: 'quick',
    files: ['table1/sdd', 'table1/sdedit', 'table1/ddib', 'table1/diffae', 'table2/styleclip'],
    webgpu: ['sdd', 'styleclip'],
  },
  {
    world: 'paper-random-tiny',
    profile: 'tiny',
    files: ['paper/sdd', 'paper/sdedit', 'paper/ddib', 'paper/styleclip'],
    webgpu: [] as string[],
  },
];

const ALL = process.env.SDD_LEAK_ALL === '1';
const methodOf = (file: string) => file.split('/')[1];
const runsOn = (backend: string, w: (typeof WORLDS)[number], file: string) =>
  ALL || backend !== 'webgpu' || w.webgpu.includes(methodOf(file));

interface Probe {
  tensors: number;
  maxPooled: number;
  maxStaging: number;
  peak: number;
  /** Live tensors at each progress step, per phase label. */
  steps: Map<string, number[]>;
}

/** One run of `file`'s first planned run (seed 0), probing the pool and tensors at every progress step. */
async function runOnce(file: string, profile: string): Promise<Probe> {
  const path = join(PROJECT_ROOT, 'experiments', `${file}.yaml`);
  const name = methodOf(file);
  const seed = 0;
  const sets = [...SHRINK[name], `seeds=[${seed}]`];
  const { experiment } = loadExperiment(path, { profile, sets });
  const [run] = expandExperiment(experiment, path);
  const method = getMethod(run.config.method.name);
  const probe: Probe = { tensors: 0, maxPooled: 0, maxStaging: 0, peak: 0, steps: new Map() };
  const sample = () => {
    const p = poolCounters();
    probe.maxPooled = Math.max(probe.maxPooled, p?.bytes_pooled ?? 0);
    probe.maxStaging = Math.max(probe.maxStaging, p?.staging_bytes_pooled ?? 0);
  };
  resetPeakMemory();
  await method.run(
    makeContext({
      runId: `${name}-${seed}`,
      runDir: tmp('sdd-leaks-run-'),
      seed,
      world: run.config.world,
      params: method.params.parse(run.config.method.params),
      signal: new AbortController().signal,
      progress: (_done, _total, label) => {
        sample();
        const key = label ?? '';
        probe.steps.set(key, [...(probe.steps.get(key) ?? []), tf.memory().numTensors]);
      },
    }),
  );
  sample();
  probe.tensors = tf.memory().numTensors;
  probe.peak = deviceMemory().peak_bytes;
  return probe;
}

/** Pool within budget at every step; the same tensor count at every step of a phase. */
function checkRun(key: string, p: Probe, problems: string[]): void {
  assert.ok(p.maxPooled <= POOL_MB * MIB, `${key}: ${p.maxPooled} B pooled > ${POOL_MB} MiB`);
  assert.ok(p.maxStaging <= STAGING_MB * MIB, `${key}: ${p.maxStaging} B staging > ${STAGING_MB} MiB`);
  for (const [label, counts] of p.steps)
    if (counts.some((c) => c !== counts[0])) problems.push(`${key}: live tensors at each '${label}' step ${counts}`);
}

/**
 * The world's models, loaded as a run loads them (once per process), SD's built (lazy_sd.ts: the
 * paper worlds build it at the first text condition, encode or ε), so that what follows is each
 * method's own: every tensor a method's run leaves behind counts, its first run's included.
 */
async function warmUp(name: string): Promise<void> {
  const cond = await loadWorld(name).diffusion.textCondition(['']);
  tf.dispose([cond.context, cond.mask]);
}

/**
 * Per world: its models loaded, then every method once; each run leaves the tensor count where
 * it found it and keeps the pool within its budget.
 */
async function allMethods(): Promise<void> {
  registerBuiltinMethods();
  const problems: string[] = [];
  const backend = tf.getBackend();
  for (const w of WORLDS) {
    const files = w.files.filter((f) => runsOn(backend, w, f));
    if (!files.length) continue;
    const [t0, cpu0] = [performance.now(), cpuSeconds()];
    await warmUp(w.world);
    for (const file of files) {
      const key = `${backend} ${w.world} ${methodOf(file)}`;
      const [t1, cpu1] = [performance.now(), cpuSeconds()];
      const before = tf.memory().numTensors;
      const p = await runOnce(file, w.profile);
      checkRun(key, p, problems);
      console.log(
        `# ${key}: ${before} → ${p.tensors} tensors; peak ${(p.peak / MIB).toFixed(1)} MiB; ` +
          `max pooled ${(p.maxPooled / MIB).toFixed(2)} MiB (staging ${(p.maxStaging / MIB).toFixed(2)}); ` +
          `${((performance.now() - t1) / 1000).toFixed(1)} s, CPU ${(cpuSeconds() - cpu1).toFixed(1)} s`,
      );
      if (p.tensors !== before) problems.push(`${key}: ${p.tensors - before} tensors per run`);
    }
    const wall = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(
      `# ${backend} ${w.world}: ${wall} s with its models' loading, CPU ${(cpuSeconds() - cpu0).toFixed(1)} s`,
    );
  }
  assert.deepEqual(problems, [], 'live tensors after a run vs before it, and across the steps of a phase');
}

const skipReason = (await webgpuSkipReason()) ?? false;

after(() => {
  if (!skipReason) shutdownBackend();
});

test('wasm: every method on toyfaces and paper-random-tiny: tensor count flat', async () => {
  await initBackend('wasm');
  await allMethods();
});

test(
  `webgpu: ${ALL ? 'every method on toyfaces and paper-random-tiny' : 'SDD and StyleCLIP on toyfaces'}: tensor count flat, pool within budget`,
  { skip: skipReason },
  async () => {
    await initBackend('webgpu');
    await allMethods();
  },
);
