/**
 * A diffusers `scheduler/scheduler_config.json`, read into our scheduler setting: the training
 * schedule (num_train_timesteps, beta_start, beta_end, beta_schedule, or explicit trained_betas),
 * steps_offset, set_alpha_to_one, and what the model predicts (prediction_type ε or v).
 *
 * Samplers here work in ε. A world whose model predicts v converts its output with epsFromV
 * (ε = √ᾱ·v + √(1 − ᾱ)·x_t, Salimans & Ho 2022), so methods never see the difference.
 * clip_sample / thresholding change the x̂₀ of each step non-linearly; SD v1 ships without them,
 * and a config that turns them on is refused by name rather than sampled differently.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../../errors.js';
import type { BetaSchedule } from './schedule.js';
import type { SchedulerConfig } from './ddim.js';

export type Prediction = 'epsilon' | 'v_prediction';

export interface ModelScheduler {
  scheduler: SchedulerConfig;
  prediction: Prediction;
  /** `_class_name` of the file (DDIMScheduler, PNDMScheduler, …): the DDIM setting is read from any of them. */
  className: string;
}

const SCHEDULES: Record<string, BetaSchedule> = { scaled_linear: 'scaled_linear', linear: 'linear' };

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
  if (c.trained_betas !== undefined && c.trained_betas !== null) fail('trained_betas', 'explicit betas are not supported (use beta_schedule)');
  const schedule = SCHEDULES[String(c.beta_schedule ?? 'linear')];
  if (!schedule) fail('beta_schedule', `${JSON.stringify(c.beta_schedule)} is not supported (have: ${Object.keys(SCHEDULES).join(', ')})`);
  const prediction = String(c.prediction_type ?? 'epsilon');
  if (prediction !== 'epsilon' && prediction !== 'v_prediction') fail('prediction_type', `${JSON.stringify(c.prediction_type)} is not supported (have: epsilon, v_prediction)`);
  for (const key of ['clip_sample', 'thresholding']) {
    // Absent counts as off: SD v1's own pipeline samples with PNDM, which never clips (note that
    // diffusers' DDIMScheduler.from_config would default clip_sample to true there).
    if (c[key] === true) fail(key, 'true changes every step\'s x̂₀ non-linearly; not supported');
  }
  const offset = num('steps_offset', 0);
  if (!Number.isInteger(offset) || offset < 0) fail('steps_offset', `expected a non-negative integer, got ${offset}`);
  const one = c.set_alpha_to_one ?? true;
  if (typeof one !== 'boolean') fail('set_alpha_to_one', `expected true or false, got ${JSON.stringify(one)}`);
  return {
    scheduler: { trainTimesteps: T, betaStart: num('beta_start', 0.0001), betaEnd: num('beta_end', 0.02), schedule, offset, alphaOneAtStart: one as boolean },
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
