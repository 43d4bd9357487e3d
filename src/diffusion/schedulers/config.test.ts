import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { backendFromEnv, initBackend } from '../../backend/index.js';
import { epsFromV, parseSchedulerConfig } from './config.js';
import { alphasCumprod } from './schedule.js';
import { ddimFor, SD_SCHEDULER } from './ddim.js';

await initBackend(backendFromEnv());

// Stable Diffusion v1-4's scheduler/scheduler_config.json (public values).
const SD14 = JSON.stringify({
  _class_name: 'PNDMScheduler',
  _diffusers_version: '0.7.0.dev0',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
  clip_sample: false,
});

test("SD v1-4's scheduler_config.json gives exactly our SD setting; diffusers' defaults fill what a file omits", () => {
  const m = parseSchedulerConfig(SD14, 'scheduler_config.json');
  assert.deepEqual(m.scheduler, SD_SCHEDULER);
  assert.equal(m.prediction, 'epsilon');
  assert.equal(m.className, 'PNDMScheduler');
  assert.deepEqual(ddimFor(m.scheduler, 50).timesteps.slice(0, 3), [981, 961, 941]);
  const d = parseSchedulerConfig('{"prediction_type": "v_prediction"}', 'f.json');
  assert.deepEqual(d.scheduler, {
    trainTimesteps: 1000,
    betaStart: 0.0001,
    betaEnd: 0.02,
    schedule: 'linear',
    rescaleZeroSnr: false,
    offset: 0,
    alphaOneAtStart: true,
    spacing: 'leading',
  });
  assert.equal(d.prediction, 'v_prediction');
});

test("other samplers' settings and diffusers' bookkeeping keys are accepted: they cannot change a DDIM step", () => {
  const m = parseSchedulerConfig(
    JSON.stringify({
      _class_name: 'DPMSolverMultistepScheduler',
      _diffusers_version: '0.31.0',
      solver_order: 2,
      algorithm_type: 'dpmsolver++',
      use_karras_sigmas: true,
      variance_type: null,
      timestep_spacing: 'trailing',
      rescale_betas_zero_snr: true,
    }),
    'f.json',
  );
  assert.equal(m.scheduler.spacing, 'trailing');
  assert.equal(m.scheduler.rescaleZeroSnr, true);
  assert.equal(m.className, 'DPMSolverMultistepScheduler');
});

test('unsupported or malformed settings are refused in one line naming the file and key', () => {
  const bad: Array<[string, RegExp]> = [
    ['{"beta_schedule": "squaredcos_cap_v2"}', /f\.json: beta_schedule: "squaredcos_cap_v2" is not supported/],
    ['{"prediction_type": "sample"}', /f\.json: prediction_type: "sample" is not supported/],
    ['{"clip_sample": true}', /f\.json: clip_sample: true changes/],
    ['{"thresholding": true}', /f\.json: thresholding: true changes/],
    ['{"trained_betas": [0.1, 0.2]}', /f\.json: trained_betas: explicit betas are not supported/],
    ['{"steps_offset": -1}', /f\.json: steps_offset: expected a non-negative integer/],
    ['{"num_train_timesteps": "1000"}', /f\.json: num_train_timesteps: expected a number/],
    ['{"set_alpha_to_one": "no"}', /f\.json: set_alpha_to_one: expected true or false/],
    [
      '{"timestep_spacing": "trailling"}',
      /f\.json: timestep_spacing: "trailling" is not supported \(have: leading, trailing, linspace\)/,
    ],
    ['{"rescale_betas_zero_snr": 1}', /f\.json: rescale_betas_zero_snr: expected true or false/],
    ['{"timestep_type": "continuous"}', /f\.json: timestep_type: "continuous" is not supported/],
    [
      '{"variance_type": "learned_range"}',
      /f\.json: variance_type: "learned_range": a model that predicts its variance/,
    ],
    [
      '{"use_flow_sigmas": true}',
      /f\.json: use_flow_sigmas: not a setting this loader implements \(true\); refused rather than ignored/,
    ],
    ['[1]', /f\.json: expected a JSON object/],
    ['{oops', /f\.json: not valid JSON/],
  ];
  for (const [text, re] of bad) assert.throws(() => parseSchedulerConfig(text, 'f.json'), re, text);
});

test('epsFromV recovers ε from v = √ᾱ·ε − √(1 − ᾱ)·x₀ at x_t = √ᾱ·x₀ + √(1 − ᾱ)·ε (abs. err ≤ 1e-5)', async () => {
  const alphas = alphasCumprod(SD_SCHEDULER);
  const ts = [10, 500, 990];
  const n = 2 * 2 * 3;
  const x0 = Float32Array.from({ length: ts.length * n }, (_, i) => Math.sin(i));
  const eps = Float32Array.from({ length: ts.length * n }, (_, i) => Math.cos(3 * i));
  const v = new Float32Array(x0.length);
  const xt = new Float32Array(x0.length);
  ts.forEach((t, b) => {
    const a = alphas[t];
    for (let i = b * n; i < (b + 1) * n; i++) {
      v[i] = Math.sqrt(a) * eps[i] - Math.sqrt(1 - a) * x0[i];
      xt[i] = Math.sqrt(a) * x0[i] + Math.sqrt(1 - a) * eps[i];
    }
  });
  const shape: [number, number, number, number] = [ts.length, 2, 2, 3];
  const got = await epsFromV(
    tf.tensor4d(v, shape),
    tf.tensor4d(xt, shape),
    tf.tensor1d(ts.map((t) => alphas[t])),
  ).data();
  got.forEach((g, i) => assert.ok(Math.abs(g - eps[i]) <= 1e-5, `${i}: ${g} vs ${eps[i]}`));
});
