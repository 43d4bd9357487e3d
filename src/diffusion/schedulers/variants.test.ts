/**
 * scheduler_config.json settings beyond SD v1's against diffusers v0.31.0's DDIMScheduler
 * (test/fixtures/sd_tiny/schedulers.json, made by tools/make_sd_fixture.py --variants-only):
 * timestep_spacing leading / trailing / linspace, rescale_betas_zero_snr, ε and v prediction.
 * Tolerances: timesteps identical; zero-SNR ᾱ within 1e-12 of the same rescaling in float64 and
 * within 1e-6 · ᾱ_0 of diffusers' float32 ᾱ (measured 4.4e-16 and 5.1e-7), ᾱ_999 exactly 0; each
 * DDIM step's outputs within 2e-6 · max |reference| of diffusers' float32 step (we step in
 * float64; measured ≤ 6.8e-7).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendFromEnv, initBackend } from '../../backend/index.js';
import { PROJECT_ROOT } from '../../util/env.js';
import { assertClose } from '../../../test/parity.js';
import { epsFromV, parseSchedulerConfig } from './config.js';
import { alphasCumprod } from './schedule.js';
import { ddimFor, type DdimScheduler } from './ddim.js';

await initBackend(backendFromEnv());

interface Loop {
  config: Record<string, unknown>;
  steps: number;
  eta: number;
  timesteps: number[];
  x: number[][];
  model_output: number[][];
  noise: number[][];
  prev: number[][];
  x0: number[][];
  nonfinite_at?: number;
}
interface Fixture {
  timesteps: Array<{ spacing: string; steps_offset: number; steps: number; timesteps: number[] }>;
  zero_snr_alphas_cumprod: Record<string, { float32: number[]; float64: number[] }>;
  loops: Record<string, Loop>;
}

const FILE = join(PROJECT_ROOT, 'test', 'fixtures', 'sd_tiny', 'schedulers.json');
const FIX = JSON.parse(readFileSync(FILE, 'utf-8')) as Fixture;
const SD14 = JSON.parse(
  readFileSync(join(PROJECT_ROOT, 'test', 'fixtures', 'sd_tiny', 'scheduler', 'scheduler_config.json'), 'utf-8'),
) as Record<string, unknown>;
const STEP_REL = 2e-6;

const schedulerOf = (config: Record<string, unknown>, steps: number, eta = 0): DdimScheduler =>
  ddimFor(parseSchedulerConfig(JSON.stringify(config), 'scheduler_config.json').scheduler, steps, eta);

test('timestep_spacing leading / trailing / linspace: the timesteps of DDIMScheduler.set_timesteps for 1 … 999 steps', () => {
  assert.equal(FIX.timesteps.length, 33);
  for (const c of FIX.timesteps) {
    assert.deepEqual(
      schedulerOf({ ...SD14, timestep_spacing: c.spacing }, c.steps).timesteps,
      c.timesteps,
      `${c.spacing}, ${c.steps} steps`,
    );
  }
  // The case: DDIM-10 trailing is 999 … 99, leading (SD v1) 901 … 1.
  assert.deepEqual(
    schedulerOf({ ...SD14, timestep_spacing: 'trailing' }, 10).timesteps,
    [999, 899, 799, 699, 599, 499, 399, 299, 199, 99],
  );
  assert.deepEqual(schedulerOf(SD14, 10).timesteps, [901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
});

test("rescale_betas_zero_snr: ᾱ_999 = 0 exactly, ᾱ_0 kept; the float64 rescaling to 1e-12, diffusers' float32 ᾱ to 1e-6 · ᾱ_0", (t) => {
  for (const [schedule, ref] of Object.entries(FIX.zero_snr_alphas_cumprod)) {
    const cfg = schedule === 'linear' ? { beta_schedule: 'linear' } : SD14;
    const ours = alphasCumprod(
      parseSchedulerConfig(JSON.stringify({ ...cfg, rescale_betas_zero_snr: true }), 'f.json').scheduler,
    );
    assert.equal(ours[999], 0, `${schedule}: ᾱ_999`);
    let d64 = 0;
    let d32 = 0;
    ours.forEach((a, i) => {
      d64 = Math.max(d64, Math.abs(a - ref.float64[i]));
      d32 = Math.max(d32, Math.abs(a - ref.float32[i]));
    });
    t.diagnostic(
      `${schedule}: max |Δ| vs float64 ${d64.toExponential(2)}, vs diffusers float32 ${d32.toExponential(2)}`,
    );
    assert.ok(d64 <= 1e-12, `${schedule}: ${d64}`);
    assert.ok(d32 <= 1e-6 * ref.float32[0], `${schedule}: ${d32}`);
  }
});

/** ε-form steps (host and the device loop's coefficients) of a loop, against diffusers' prev_sample. */
function checkEpsLoop(t: { diagnostic(m: string): void }, name: string, loop: Loop, s: DdimScheduler): void {
  for (const [i, ts] of loop.timesteps.entries()) {
    const [x, out, noise] = [loop.x[i], loop.model_output[i], loop.eta > 0 ? loop.noise[i] : undefined];
    if (loop.nonfinite_at === ts) {
      // diffusers' step divides by √ᾱ_t = 0 here and the loop stops (no finite reference).
      assert.throws(() => s.step(out, ts, x, noise), /ᾱ_999 = 0 \(rescale_betas_zero_snr\): x̂₀ is undefined from ε̂/);
      assert.throws(() => s.stepCoefficients(ts), /ᾱ_999 = 0/);
      return;
    }
    assertClose(t, `${name} t=${ts} prev`, s.step(out, ts, x, noise), loop.prev[i], STEP_REL);
    const { cx, ce, cn } = s.stepCoefficients(ts);
    assertClose(
      t,
      `${name} t=${ts} coefficients`,
      x.map((v, j) => cx * v + ce * out[j] + (noise ? cn * noise[j] : 0)),
      loop.prev[i],
      STEP_REL,
    );
  }
}

/** v-form steps: prev_sample and pred_original_sample, including ᾱ_t = 0. */
function checkVLoop(t: { diagnostic(m: string): void }, name: string, loop: Loop, s: DdimScheduler): void {
  loop.timesteps.forEach((ts, i) => {
    const { prev, x0 } = s.stepV(loop.model_output[i], ts, loop.x[i], loop.eta > 0 ? loop.noise[i] : undefined);
    assertClose(t, `${name} t=${ts} prev`, prev, loop.prev[i], STEP_REL);
    assertClose(t, `${name} t=${ts} x0`, x0, loop.x0[i], STEP_REL);
  });
}

test('whole DDIM loops (trailing, linspace with η 0.5, zero SNR with ε and v, set_alpha_to_one) step as diffusers does', (t) => {
  for (const [name, loop] of Object.entries(FIX.loops)) {
    const s = schedulerOf(loop.config, loop.steps, loop.eta);
    assert.deepEqual(s.timesteps, loop.timesteps, name);
    if (loop.config.prediction_type === 'v_prediction') checkVLoop(t, name, loop, s);
    else checkEpsLoop(t, name, loop, s);
  }
  assert.equal(FIX.loops.trailing_zero_snr_eps.nonfinite_at, 999, 'diffusers itself has no finite ε-step at ᾱ = 0');
});

test("a v-prediction world's ε (epsFromV) steps like diffusers' v step wherever ᾱ_t > 0", async (t) => {
  const loop = FIX.loops.trailing_zero_snr_v;
  const s = schedulerOf(loop.config, loop.steps);
  for (let i = 1; i < loop.timesteps.length; i++) {
    const ts = loop.timesteps[i];
    const shape: [number, number, number, number] = [1, 2, 2, 4]; // the values' order does not matter elementwise
    const eps = await epsFromV(
      tf.tensor4d(loop.model_output[i], shape),
      tf.tensor4d(loop.x[i], shape),
      tf.tensor1d([s.alphas[ts]]),
    ).data();
    assertClose(t, `t=${ts}`, s.step(eps, ts, loop.x[i]), loop.prev[i], STEP_REL);
  }
});
