/**
 * SDEdit's strength → start timestep, observed on the real method (baselines/sdedit.ts) and the
 * toyfaces world: the ε-model is wrapped only to record what it is called with. For strength s and
 * N DDIM steps exactly the last ⌈s·N⌉ of the N "leading" timesteps t_i = i·⌊1000/N⌋ + 1 run, in
 * descending order, and the image is noised to the first of them (diffusers' img2img does the same,
 * with ⌊s·N⌋ steps).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { tmp } from './helpers.js';
import { backendFromEnv, initBackend } from '../src/backend/index.js';
import { loadWorld } from '../src/world/registry.js';
import { makeContext } from '../src/exec/context.js';
import { sdedit, sdeditParams } from '../baselines/sdedit.js';
import { sourceImages } from '../baselines/common.js';
import { alphasCumprod, SD_SCHEDULE } from '../src/diffusion/schedulers/schedule.js';
import { Rng } from '../src/util/rng.js';

const PROMPT = 'hair_color:black->white';
const M = 2; // one batch of two images: the warm-up call (1 image), then the timed batch

/** ⌈s·N⌉ in exact decimal arithmetic (s has at most 6 decimals here), not in binary floats. */
const stepsFor = (s: number, n: number) => Math.ceil((Math.round(s * 1e6) * n) / 1e6);
/** The leading-spacing DDIM timesteps of N steps (offset 1), descending — the oracle. */
const leading = (n: number) => Array.from({ length: n }, (_, i) => (n - 1 - i) * Math.floor(1000 / n) + 1);

interface Call {
  t: number;
  batch: number;
  z: Float32Array;
}

/** Runs SDEdit at (s, N) on the first M test images and records every ε-model call. */
async function runRecorded(
  strength: number,
  steps: number,
): Promise<{ calls: Call[]; stepsRun: unknown; originals: Float32Array }> {
  await initBackend(backendFromEnv());
  const world = loadWorld('toyfaces');
  const eps = world.diffusion.eps;
  const calls: Call[] = [];
  // Copies kept now, read (awaited) after the run: a GPU backend has no synchronous reads.
  const seen: Array<{ t: tf.Tensor; z: tf.Tensor }> = [];
  world.diffusion.eps = (zt, t, context, mask) => {
    seen.push({ t: tf.keep(t.clone()), z: tf.keep(zt.clone()) });
    return eps(zt, t, context, mask);
  };
  try {
    const dir = tmp();
    const params = sdeditParams.parse({ prompt: PROMPT, strength, steps, eval_images: M, batch: M });
    const ctx = makeContext({
      runId: 'sdedit-test',
      runDir: dir,
      seed: 0,
      world: 'toyfaces',
      params,
      signal: new AbortController().signal,
      progress: () => {},
    });
    const res = await sdedit.run(ctx);
    for (const c of seen) {
      const ts = new Set(await c.t.data());
      assert.equal(ts.size, 1, 'one timestep per call');
      calls.push({ t: [...ts][0], batch: c.z.shape[0], z: (await c.z.data()) as Float32Array });
    }
    return { calls, stepsRun: res.steps_run, originals: await sourceImages(world, PROMPT, M, params.sources) };
  } finally {
    world.diffusion.eps = eps;
    tf.dispose(seen.flatMap((c) => [c.t, c.z]));
  }
}

for (const [s, n] of [
  [0.5, 10],
  [1, 10],
  [0.05, 10],
  [0.3, 50],
  [0.7, 20],
] as const) {
  test(`SDEdit strength ${s}, ${n} steps: runs the last ⌈s·N⌉ = ${stepsFor(s, n)} timesteps and noises to the first`, async () => {
    const k = stepsFor(s, n);
    const { calls, stepsRun, originals } = await runRecorded(s, n);
    assert.equal(stepsRun, k, 'steps_run in the result');
    // Warm-up (one image) then the timed batch: k calls each, CFG doubling the batch.
    assert.deepEqual(
      calls.map((c) => c.batch),
      [...Array(k).fill(2), ...Array(k).fill(2 * M)],
    );
    const expected = leading(n).slice(n - k);
    assert.equal(expected.length, k);
    assert.deepEqual(
      calls.slice(k).map((c) => c.t),
      expected,
      'the timed batch',
    );
    assert.deepEqual(
      calls.slice(0, k).map((c) => c.t),
      expected,
      'the warm-up',
    );
    // The start latent is q(z_t0 | z_0) at t0 = the first step run: √ᾱ·z0 + √(1−ᾱ)·ε with the
    // method's per-batch noise (Rng(seed·1000003 + offset), seed 0, offset 0).
    const world = loadWorld('toyfaces');
    const z0t = tf.tidy(() => world.diffusion.encode(tf.tensor4d(originals, [M, 32, 32, 3])));
    const z0 = (await z0t.data()) as Float32Array;
    z0t.dispose();
    const rng = new Rng(0);
    const noise = Float64Array.from({ length: z0.length }, () => rng.normal());
    const a = alphasCumprod(SD_SCHEDULE)[expected[0]];
    const first = calls[k].z.subarray(0, z0.length); // the unconditional half of the CFG batch
    let err = 0;
    for (let i = 0; i < z0.length; i++)
      err = Math.max(err, Math.abs(first[i] - (Math.sqrt(a) * z0[i] + Math.sqrt(1 - a) * noise[i])));
    assert.ok(err < 1e-4, `start latent differs from q(z_${expected[0]} | z_0) by ${err}`);
  });
}

// ⌈0.14·50⌉ is 7, but 0.14·50 is 7.000000000000001 in binary floating point: a plain
// Math.ceil(s·N) ran 8 steps (same for 0.28 and 0.56 at 50 steps, 0.07 at 100, ...).
test('SDEdit strength 0.14, 50 steps: runs ⌈0.14·50⌉ = 7 steps, not 8', async () => {
  const { calls, stepsRun } = await runRecorded(0.14, 50);
  assert.equal(stepsRun, 7);
  assert.deepEqual(
    calls.slice(calls.length / 2).map((c) => c.t),
    leading(50).slice(43),
  );
});
