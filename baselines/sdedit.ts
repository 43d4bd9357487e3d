/**
 * SDEdit (Meng et al. 2022) on a latent text-to-image model: encode, noise to strength s (the
 * last ⌈s·N⌉ of N DDIM steps), denoise with the target prompt and classifier-free guidance.
 * Strength trades fidelity (low s) for editability (high s); no training (τ_train = 0).
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { ddimFor, type DdimScheduler } from '../src/diffusion/schedulers/ddim.js';
import { ddimSampleTensor } from '../src/diffusion/pipelines/sample.js';
import { Rng } from '../src/util/rng.js';
import { loadWorld } from '../src/world/registry.js';
import { editTimed, promptOf } from '../src/methods/editing.js';
import type { Method } from '../src/methods/types.js';
import type { World } from '../src/world/types.js';
import { diffusionParams, inferenceOnlyResult, latentShape, textEps, textPair, sourceImages } from './common.js';
import { tradeoffSection } from './sdedit_report.js';
import { batchLayout } from '../src/sdd/twin.js';
import { baselineInputs, latentOf, sampleSteps, textPlan } from './torch_twin.js';

export const sdeditParams = z.strictObject({
  ...diffusionParams,
  strength: z.number().gt(0).max(1).default(0.5).describe('s: noise to t0 = s·T, run the last ⌈s·N⌉ steps'),
  guidance_scale: z.number().positive().default(7.5),
});
export type SdeditParams = z.infer<typeof sdeditParams>;

/** The noise of a batch at `offset`: its own Rng, so a batch's images do not depend on the others'. */
const batchSeed = (seed: number, offset: number) => seed * 1_000_003 + offset;

/** The scheduler and the last ⌈s·N⌉ of its timesteps, which a run takes. */
function schedule(p: SdeditParams, world: World): { scheduler: DdimScheduler; timesteps: number[] } {
  const scheduler = ddimFor(world.diffusion.scheduler, p.steps, p.eta);
  // ⌈s·N⌉ on the decimal product: in binary floats 0.14·50 is 7.000000000000001 (8 steps, not 7).
  const k = Math.ceil(Number((p.strength * p.steps).toFixed(9)));
  // From the end of the schedule: at N = 1000 the scheduler drops t = 1000 and has N − 1 steps.
  return { scheduler, timesteps: scheduler.timesteps.slice(Math.max(0, scheduler.timesteps.length - k)) };
}

export const sdedit: Method<SdeditParams> = {
  name: 'sdedit',
  resources: { cpus: 2, mem: '8G', time: '2:00:00' },
  // v2: τ_infer calibrated under the device lock (#30); the images are v1's, the times are not comparable.
  version: 2,
  description: 'SDEdit: noise the image to a strength, denoise under the target prompt with CFG (DDIM).',
  params: sdeditParams,
  reportSections: [tradeoffSection],
  torch: {
    inputs: baselineInputs,
    // The batch's Rng draws z_T's noise first (latent order NHWC), then each step's when cn > 0.
    plan(p, world, run) {
      const { scheduler, timesteps } = schedule(p, world);
      const a = scheduler.alphas[timesteps[0]];
      return {
        target: textPlan('text', p.guidance_scale),
        latent_shape: latentOf(world),
        start: { t: timesteps[0], sqrt_alpha: Math.sqrt(a), sqrt_one_minus_alpha: Math.sqrt(1 - a) },
        steps: sampleSteps(scheduler, p.eta, timesteps),
        ...batchLayout(p.eval_images, p.batch, (offset) => batchSeed(run.seed, offset)),
      };
    },
    result: (p, plan) => ({ strength: p.strength, steps_run: (plan.steps as unknown[]).length }),
  },
  async run(ctx) {
    const p = ctx.params;
    const world = loadWorld(ctx.world);
    const prompt = promptOf(world, p.prompt);
    const { scheduler, timesteps } = schedule(p, world);
    const originals = await sourceImages(world, prompt.id, p.eval_images, p.sources);
    const text = await textPair(world, prompt.text);
    const edits = await editTimed(world, originals, p.batch, (x, offset) => {
      // Seeded per batch offset: the same noise for the same batch size.
      const rng = new Rng(batchSeed(ctx.seed, offset));
      const shape = latentShape(world, x.shape[0]);
      const n = shape.reduce((a, b) => a * b, 1);
      // The host rng draws the noise (the same images on every backend); q(z_t | z_0) on the device.
      const noise = tf.tensor4d(
        Float32Array.from({ length: n }, () => rng.normal()),
        shape,
      );
      const a = scheduler.alphas[timesteps[0]];
      const start = tf.add(
        tf.mul(world.diffusion.encode(x), Math.sqrt(a)),
        tf.mul(noise, Math.sqrt(1 - a)),
      ) as tf.Tensor4D;
      const guided = textEps(world, text, x.shape[0], p.guidance_scale);
      try {
        return world.diffusion.decode(ddimSampleTensor(guided.eps, scheduler, start, shape, rng, p.eta, timesteps));
      } finally {
        guided.dispose();
      }
    });
    return {
      ...(await inferenceOnlyResult(ctx, world, prompt, originals, edits)),
      strength: p.strength,
      steps_run: timesteps.length,
    };
  },
};
