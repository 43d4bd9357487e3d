/**
 * DDIB (Su et al. 2023), dual diffusion implicit bridges on one text-conditional model:
 * deterministic DDIM inversion to z_T under the source prompt, then DDIM generation from z_T
 * under the target prompt. Both directions' guidance scales are settings (source 1 keeps the
 * inversion a plain conditional ODE, which is what makes it invertible).
 */
import { z } from 'zod';
import { ddimFor } from '../src/diffusion/schedulers/ddim.js';
import { ddimInvertTensor, ddimSampleTensor } from '../src/diffusion/pipelines/sample.js';
import { loadWorld } from '../src/world/registry.js';
import { editTimed, promptOf } from '../src/methods/editing.js';
import type { Method } from '../src/methods/types.js';
import { diffusionParams, inferenceOnlyResult, latentShape, textEps, textPair, sourceImages } from './common.js';
import { batchLayout } from '../src/sdd/twin.js';
import { baselineInputs, invertSteps, latentOf, sampleSteps, textPlan } from './torch_twin.js';

export const ddibParams = z.strictObject({
  ...diffusionParams,
  source_guidance: z.number().positive().default(1).describe('CFG scale while inverting under the source prompt'),
  target_guidance: z.number().positive().default(7.5).describe('CFG scale while generating under the target prompt'),
});
export type DdibParams = z.infer<typeof ddibParams>;

export const ddib: Method<DdibParams> = {
  name: 'ddib',
  resources: { cpus: 2, mem: '8G', time: '2:00:00' },
  // v2: τ_infer calibrated under the device lock (#30); the images are v1's, the times are not comparable.
  version: 2,
  description: 'DDIB: DDIM-invert under the source prompt, regenerate under the target prompt.',
  params: ddibParams,
  torch: {
    inputs: baselineInputs,
    // η = 0 both ways whatever p.eta (the run's scheduler is built at 0): no noise, no seeds.
    plan: (p, world) => {
      const scheduler = ddimFor(world.diffusion.scheduler, p.steps, 0);
      return {
        source: textPlan('source_text', p.source_guidance),
        target: textPlan('text', p.target_guidance),
        latent_shape: latentOf(world),
        invert: invertSteps(scheduler),
        sample: sampleSteps(scheduler),
        ...batchLayout(p.eval_images, p.batch),
      };
    },
  },
  async run(ctx) {
    const p = ctx.params;
    const world = loadWorld(ctx.world);
    const prompt = promptOf(world, p.prompt);
    const scheduler = ddimFor(world.diffusion.scheduler, p.steps, 0);
    const originals = await sourceImages(world, prompt.id, p.eval_images, p.sources);
    const [sourceText, targetText] = [await textPair(world, prompt.sourceText), await textPair(world, prompt.text)];
    const edits = await editTimed(world, originals, p.batch, (x) => {
      const b = x.shape[0];
      const shape = latentShape(world, b);
      const source = textEps(world, sourceText, b, p.source_guidance);
      const target = textEps(world, targetText, b, p.target_guidance);
      try {
        const zT = ddimInvertTensor(source.eps, scheduler, world.diffusion.encode(x), shape);
        return world.diffusion.decode(ddimSampleTensor(target.eps, scheduler, zT, shape));
      } finally {
        source.dispose();
        target.dispose();
      }
    });
    return await inferenceOnlyResult(ctx, world, prompt, originals, edits);
  },
};
