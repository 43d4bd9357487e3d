/**
 * Schedulers: SD's ᾱ against NumPy, diffusers' DDIM timesteps, exactness with an oracle ε-model
 * (sampling and inversion), DDPM as DDIM(η = 1, all steps).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { requirePython } from '../../util/python.js';
import { alphasCumprod, betas, SD_SCHEDULE } from './schedule.js';
import { DdimScheduler, DDIM_SD, ddimFor, ddpmScheduler, SD_SCHEDULER } from './ddim.js';
import { Rng } from '../../util/rng.js';

test('scaled-linear ᾱ matches NumPy to 1e-12 at every t', () => {
  const ours = alphasCumprod(SD_SCHEDULE);
  const ref = JSON.parse(
    execFileSync(requirePython(['numpy']), [
      '-c',
      'import numpy as np, json; b=np.linspace(0.00085**0.5, 0.012**0.5, 1000)**2; print(json.dumps(np.cumprod(1-b).tolist()))',
    ]).toString(),
  ) as number[];
  assert.equal(ours.length, 1000);
  for (let t = 0; t < 1000; t++) assert.ok(Math.abs(ours[t] - ref[t]) <= 1e-12 * ref[t], `t=${t}`);
  assert.ok(Math.abs(ours[999] - 0.0046) < 1e-4, `ᾱ_999 = ${ours[999]}`); // SD's known end value
});

test('DDIM timesteps: 50 leading steps with offset 1 are 981, 961, …, 1', () => {
  const s = new DdimScheduler(DDIM_SD);
  assert.equal(s.timesteps.length, 50);
  assert.equal(s.timesteps[0], 981);
  assert.equal(s.timesteps[49], 1);
  assert.ok(s.timesteps.every((t, i) => i === 0 || s.timesteps[i - 1] - t === 20));
  assert.throws(() => new DdimScheduler({ ...DDIM_SD, steps: 0 }), /DDIM steps/);
});

/** An ε-model that knows x₀: its x̂₀ is always exact, so DDIM (η = 0) must land on x₀. */
function oracle(x0: Float64Array, s: DdimScheduler) {
  return (x: ArrayLike<number>, t: number) => {
    const a = s.alphas[t];
    return Float64Array.from(x, (v, i) => (v - Math.sqrt(a) * x0[i]) / Math.sqrt(1 - a));
  };
}

test('DDIM η = 0: an oracle model recovers x₀; inversion follows the closed-form trajectory both ways', () => {
  const rng = new Rng(1);
  const x0 = Float64Array.from({ length: 16 }, () => rng.normal());
  const s = new DdimScheduler({ ...DDIM_SD, alphaOneAtStart: true });
  const eps = oracle(x0, s);
  let x: Float64Array = Float64Array.from({ length: 16 }, () => rng.normal());
  for (const t of s.timesteps) x = s.step(eps(x, t), t, x);
  x.forEach((v, i) => assert.ok(Math.abs(v - x0[i]) < 1e-9));
  // Inversion. A model that always answers the same ε* makes the η = 0 trajectory exactly
  // x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε* in both directions: inverting x₀ must land on x_981 of that
  // formula, and sampling from there must come back to x₀.
  const star = Float64Array.from({ length: 16 }, () => rng.normal());
  let z: Float64Array = Float64Array.from(x0);
  const ratio = 20;
  for (const t of s.inversionTimesteps()) z = s.invertStep(star, t - ratio, z);
  const expected = s.addNoise(x0, star, 981);
  z.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-9, `inverted ${v} vs ${expected[i]}`));
  let back = z;
  for (const t of s.timesteps) back = s.step(star, t, back);
  back.forEach((v, i) => assert.ok(Math.abs(v - x0[i]) < 1e-9, `${v} vs ${x0[i]}`));
});

test('DDPM = DDIM(η = 1, every step): σ² equals the posterior variance; η > 0 needs noise', () => {
  const s = ddpmScheduler();
  const b = betas(SD_SCHEDULE);
  const a = s.alphas;
  for (const t of [1, 10, 500, 999]) {
    const posterior = ((1 - a[t - 1]) / (1 - a[t])) * b[t];
    assert.ok(Math.abs(s.sigma(t) ** 2 - posterior) < 1e-15 + 1e-12 * posterior, `t=${t}`);
  }
  assert.equal(s.timesteps.length, 1000);
  assert.throws(() => s.step([0], 500, [0]), /needs a noise sample/);
  const out = s.step([0.5], 500, [0.2], [1.0]);
  assert.equal(out.length, 1);
});

test('addNoise follows q(x_t | x_0)', () => {
  const s = new DdimScheduler(DDIM_SD);
  const [x] = s.addNoise([2], [1], 999);
  assert.ok(Math.abs(x - (Math.sqrt(s.alphas[999]) * 2 + Math.sqrt(1 - s.alphas[999]))) < 1e-15);
});

test("ddimFor: a model's own scheduler config (steps_offset, set_alpha_to_one, schedule) decides, not SD's", () => {
  const sd = ddimFor(SD_SCHEDULER, 50);
  assert.deepEqual(sd.timesteps.slice(0, 2), [981, 961]);
  assert.equal(sd.alphaAt(-1), sd.alphas[0]);
  const other = ddimFor({ ...SD_SCHEDULER, offset: 0, alphaOneAtStart: true, schedule: 'linear' }, 50, 0.5);
  assert.deepEqual(other.timesteps.slice(0, 2), [980, 960]);
  assert.equal(other.timesteps[other.timesteps.length - 1], 0);
  assert.equal(other.alphaAt(-1), 1);
  assert.equal(other.cfg.eta, 0.5);
  assert.notEqual(other.alphas[500], sd.alphas[500]);
});
