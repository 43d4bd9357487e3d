/**
 * A diffusers `scheduler/scheduler_config.json`, read into our scheduler setting: the training
 * schedule (num_train_timesteps, beta_start, beta_end, beta_schedule, rescale_betas_zero_snr;
 * explicit trained_betas are refused), timestep_spacing, steps_offset, set_alpha_to_one, and what
 * the model predicts (prediction_type ε or v). The values are DDIMScheduler.from_config's: a key
 * the file lacks takes DDIMScheduler's default (leading spacing, set_alpha_to_one true), whatever
 * the file's own class. Every other key is either listed below as not changing a DDIM step, with
 * the reason, or refused in one line.
 *
 * Samplers here work in ε. A world whose model predicts v converts its output with epsFromV
 * (ε = √ᾱ·v + √(1 − ᾱ)·x_t, Salimans & Ho 2022), so methods never see the difference.
 * clip_sample / thresholding change the x̂₀ of each step non-linearly; SD v1 ships without them,
 * and a config that turns them on is refused by name rather than sampled differently.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../../errors.js';
import { refuseUnknownKeys } from '../models/diffusers_config.js';
import type { BetaSchedule } from './schedule.js';
import type { SchedulerConfig, TimestepSpacing } from './ddim.js';

export type Prediction = 'epsilon' | 'v_prediction';

export interface ModelScheduler {
  scheduler: SchedulerConfig;
  prediction: Prediction;
  /** `_class_name` of the file (DDIMScheduler, PNDMScheduler, …): the DDIM setting is read from any of them. */
  className: string;
}

const SCHEDULES: Record<string, BetaSchedule> = { scaled_linear: 'scaled_linear', linear: 'linear' };
const SPACINGS: TimestepSpacing[] = ['leading', 'trailing', 'linspace'];

/** Keys read by parseSchedulerConfig. */
const IMPLEMENTED = [
  'num_train_timesteps',
  'beta_start',
  'beta_end',
  'beta_schedule',
  'trained_betas',
  'rescale_betas_zero_snr',
  'prediction_type',
  'clip_sample',
  'thresholding',
  'steps_offset',
  'set_alpha_to_one',
  'timestep_spacing',
  'timestep_type',
  'variance_type',
];

/**
 * Keys that cannot change a DDIM step on the training schedule: settings of the clipping we
 * refuse, and of the samplers of the other classes a folder may name (we sample with DDIM, so
 * their own step rules and sigma grids are never used).
 */
const IRRELEVANT: Record<string, string> = {
  clip_sample_range: 'read only when clip_sample is true (refused)',
  dynamic_thresholding_ratio: 'read only when thresholding is true (refused)',
  sample_max_value: 'read only when thresholding is true (refused)',
  skip_prk_steps: "PNDM's warm-up steps",
  use_karras_sigmas: "the Euler/LMS/DPM samplers' sigma grid",
  use_exponential_sigmas: "the Euler/LMS/DPM samplers' sigma grid",
  use_beta_sigmas: "the Euler/LMS/DPM samplers' sigma grid",
  sigma_min: "the Karras sigma grid's end (Euler)",
  sigma_max: "the Karras sigma grid's end (Euler)",
  interpolation_type: "Euler's sigma interpolation",
  final_sigmas_type: 'the last sigma of the Euler/DPM samplers',
  solver_order: "DPM-Solver's order",
  algorithm_type: "DPM-Solver's variant",
  solver_type: "DPM-Solver's second-order rule",
  lower_order_final: "DPM-Solver's last steps",
  euler_at_final: "DPM-Solver's last step",
  use_lu_lambdas: "DPM-Solver's step grid",
  lambda_min_clipped: "DPM-Solver's clipping of λ for cosine schedules",
};
const KNOWN = new Set([...IMPLEMENTED, ...Object.keys(IRRELEVANT)]);

/**
 * Settings that would make sampling something other than the DDIM/DDPM update this port runs:
 * refused by name (`fail` throws), not ignored.
 */
function refuseOtherSampling(c: Record<string, unknown>, fail: (key: string, m: string) => never): void {
  for (const key of ['clip_sample', 'thresholding']) {
    // Absent counts as off: SD v1's own pipeline samples with PNDM, which never clips (note that
    // diffusers' DDIMScheduler.from_config would default clip_sample to true there).
    if (c[key] === true) fail(key, "true changes every step's x̂₀ non-linearly; not supported");
  }
  // Euler's "continuous" timesteps feed the model 0.25·log σ, not t: another model input.
  if ((c.timestep_type ?? 'discrete') !== 'discrete')
    fail('timestep_type', `${JSON.stringify(c.timestep_type)} is not supported (have: "discrete")`);
  // A learned variance doubles the model's output channels (ε and the variance).
  if (typeof c.variance_type === 'string' && c.variance_type.startsWith('learned'))
    fail('variance_type', `${JSON.stringify(c.variance_type)}: a model that predicts its variance is not supported`);
}

/** Parses the JSON text of a scheduler_config.json; errors are one line naming the file and key. */
export function parseSchedulerConfig(text: string, file: string): ModelScheduler {
  const fail = (key: string, m: string): never => {
    throw new UserError(`${file}: ${key}: ${m}`);
  };
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message.slice(0, 60)})`);
  }
  if (!c || typeof c !== 'object' || Array.isArray(c)) throw new UserError(`${file}: expected a JSON object`);
  const num = (key: string, dflt: number) => {
    const v = c[key] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(key, `expected a number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const T = num('num_train_timesteps', 1000);
  if (!Number.isInteger(T) || T < 1) fail('num_train_timesteps', `expected a positive integer, got ${T}`);
  if (c.trained_betas !== undefined && c.trained_betas !== null)
    fail('trained_betas', 'explicit betas are not supported (use beta_schedule)');
  const schedule = SCHEDULES[String(c.beta_schedule ?? 'linear')];
  if (!schedule)
    fail(
      'beta_schedule',
      `${JSON.stringify(c.beta_schedule)} is not supported (have: ${Object.keys(SCHEDULES).join(', ')})`,
    );
  const prediction = String(c.prediction_type ?? 'epsilon');
  if (prediction !== 'epsilon' && prediction !== 'v_prediction')
    fail('prediction_type', `${JSON.stringify(c.prediction_type)} is not supported (have: epsilon, v_prediction)`);
  refuseOtherSampling(c, fail);
  const offset = num('steps_offset', 0);
  if (!Number.isInteger(offset) || offset < 0) fail('steps_offset', `expected a non-negative integer, got ${offset}`);
  const flag = (key: string, dflt: boolean): boolean => {
    const v = c[key] ?? dflt;
    if (typeof v !== 'boolean') fail(key, `expected true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  };
  const spacing = c.timestep_spacing ?? 'leading';
  if (!SPACINGS.includes(spacing as TimestepSpacing))
    fail('timestep_spacing', `${JSON.stringify(spacing)} is not supported (have: ${SPACINGS.join(', ')})`);
  refuseUnknownKeys(file, c, KNOWN);
  return {
    scheduler: {
      trainTimesteps: T,
      betaStart: num('beta_start', 0.0001),
      betaEnd: num('beta_end', 0.02),
      schedule,
      rescaleZeroSnr: flag('rescale_betas_zero_snr', false),
      offset,
      alphaOneAtStart: flag('set_alpha_to_one', true),
      spacing: spacing as TimestepSpacing,
    },
    prediction: prediction as Prediction,
    className: String(c._class_name ?? 'DDIMScheduler'),
  };
}

export function readSchedulerConfig(path: string): ModelScheduler {
  let text: string;
  try {
    text = readFileSync(path, 'utf-8');
  } catch {
    throw new UserError(`${path}: cannot read (a diffusers scheduler folder has scheduler_config.json)`);
  }
  return parseSchedulerConfig(text, path);
}

/** ε from a v-prediction at x_t: ε = √ᾱ_t·v + √(1 − ᾱ_t)·x_t (per sample t). */
export function epsFromV(v: tf.Tensor4D, xt: tf.Tensor4D, alphaBar: tf.Tensor1D): tf.Tensor4D {
  return tf.tidy(() => {
    const a = tf.reshape(alphaBar, [-1, 1, 1, 1]);
    return tf.add(tf.mul(tf.sqrt(a), v), tf.mul(tf.sqrt(tf.sub(1, a)), xt)) as tf.Tensor4D;
  });
}
