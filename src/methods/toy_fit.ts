/**
 * toy_fit: fits a small tfjs MLP to a seeded synthetic regression problem. It has no research
 * value; it exercises the whole run path for real (tfjs training on the active backend, per-step
 * metrics, checkpoints and resume, NaN stops, failures) at a cost of a second or two.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { Method, MethodContext } from './types.js';
import { NonFiniteError } from './types.js';
import { tfSeed } from '../util/rng.js';

export const toyFitParams = z.strictObject({
  steps: z.number().int().positive().default(200).describe('optimizer steps'),
  lr: z.number().positive().default(0.01).describe('Adam learning rate'),
  hidden: z.number().int().positive().default(32).describe('hidden width of the MLP'),
  batch: z.number().int().positive().default(64),
  checkpoint_every: z.number().int().positive().default(50).describe('steps between checkpoints'),
  fail_at_step: z.number().int().nonnegative().optional().describe('fault injection: throw at this step'),
});
export type ToyFitParams = z.infer<typeof toyFitParams>;

const IN = 8;

function weightShapes(hidden: number): Record<string, number[]> {
  return { w1: [IN, hidden], b1: [hidden], w2: [hidden, 1], b2: [1] };
}

/** Ground truth: y = sin(x·a) + 0.1·noise, fixed by the seed. */
function dataset(seed: number): { x: tf.Tensor2D; y: tf.Tensor2D } {
  return tf.tidy(() => {
    const x = tf.randomNormal([512, IN], 0, 1, 'float32', tfSeed(seed)) as tf.Tensor2D;
    const a = tf.randomNormal([IN, 1], 0, 1, 'float32', seed + 1);
    const noise = tf.randomNormal([512, 1], 0, 0.1, 'float32', seed + 2);
    return { x, y: tf.add(tf.sin(tf.matMul(x, a)), noise) as tf.Tensor2D };
  });
}

function initWeights(ctx: MethodContext<ToyFitParams>): { vars: Record<string, tf.Variable>; start: number } {
  const saved = ctx.checkpoint.load();
  const shapes = weightShapes(ctx.params.hidden);
  const vars: Record<string, tf.Variable> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const init = saved?.tensors.get(name)
      ? tf.tensor(saved.tensors.get(name)!, shape)
      : tf.randomNormal(shape, 0, Math.sqrt(2 / shape[0]), 'float32', ctx.seed + 10 + name.length);
    vars[name] = tf.variable(init, true, name);
    init.dispose();
  }
  if (saved) ctx.log(`resumed from checkpoint at step ${saved.step}`);
  return { vars, start: saved?.step ?? 0 };
}

export const toyFit: Method<ToyFitParams> = {
  name: 'toy_fit',
  // Seconds of CPU work.
  resources: { cpus: 1, mem: '2G', time: '0:30:00' },
  // 2: seed 0 drew unseeded data (tfjs treats seed 0 as none); now every seed is reproducible.
  version: 2,
  description: 'Fits a small MLP to seeded synthetic data (exercises the run path end to end).',
  params: toyFitParams,
  async run(ctx) {
    const p = ctx.params;
    const { x, y } = dataset(ctx.seed);
    const { vars, start } = initWeights(ctx);
    // Adam's moments restart on resume; a checkpoint keeps weights only (documented in README).
    const opt = tf.train.adam(p.lr);
    const predict = (xb: tf.Tensor2D) =>
      tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(xb, vars.w1), vars.b1)), vars.w2), vars.b2);
    let loss = NaN;
    // Pacing for the executor tests (ms after each step), so a run lasts long enough to be cancelled
    // or time-limited mid-way. From the environment, not the params: a resubmission at full speed
    // must be the same run (same id).
    const pace = Number(process.env.SDD_TEST_STEP_MS ?? 0);
    for (let step = start; step < p.steps; step++) {
      if (ctx.signal.aborted) throw new Error('interrupted');
      if (p.fail_at_step !== undefined && step === p.fail_at_step) throw new Error(`fault injected at step ${step}`);
      const off = (step * p.batch) % (512 - p.batch + 1);
      const lossT = opt.minimize(
        () => tf.losses.meanSquaredError(y.slice(off, p.batch), predict(x.slice(off, p.batch))),
        true,
      );
      loss = (await lossT!.data())[0];
      lossT!.dispose();
      if (!Number.isFinite(loss)) throw new NonFiniteError(`loss is ${loss} at step ${step} (lr ${p.lr})`);
      ctx.metric(step, { loss });
      ctx.progress(step + 1, p.steps);
      if ((step + 1) % p.checkpoint_every === 0 && step + 1 < p.steps) {
        const tensors = new Map<string, { values: Float32Array; shape: number[] }>();
        for (const [n, v] of Object.entries(vars))
          tensors.set(n, { values: (await v.data()) as Float32Array, shape: v.shape });
        ctx.checkpoint.save(step + 1, tensors);
      }
      // Yield so IPC messages and signals are handled between steps.
      await new Promise((r) => (pace ? setTimeout(r, pace) : setImmediate(r)));
    }
    const full = tf.tidy(() => tf.losses.meanSquaredError(y, predict(x)));
    const finalLoss = (await full.data())[0];
    tf.dispose([full, x, y, ...Object.values(vars)]);
    opt.dispose();
    return { final_loss: finalLoss, last_step_loss: loss, steps: p.steps };
  },
};
