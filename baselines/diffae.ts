/**
 * DiffAE (Preechakul et al. 2022): semantic code z_sem from its encoder, stochastic code x_T by
 * DDIM inversion given z_sem, an edit of z_sem along the attribute classifier's unit direction in
 * normalised space (z′ = z + α·ŵ), and DDIM decoding of x_T given z′. Needs the world's DiffAE pair
 * and classifiers; it cannot run on a plain text-conditional model.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { UserError } from '../src/errors.js';
import { ddimFor } from '../src/diffusion/schedulers/ddim.js';
import { ddimInvertTensor, ddimSampleTensor } from '../src/diffusion/pipelines/sample.js';
import { loadWorld } from '../src/world/registry.js';
import { editTimed, promptOf } from '../src/methods/editing.js';
import type { Method } from '../src/methods/types.js';
import { worldPart } from '../src/world/types.js';
import { diffusionParams, inferenceOnlyResult, latentShape, sourceImages } from './common.js';
import { batchLayout } from '../src/sdd/twin.js';
import { baselineInputs, invertSteps, latentOf, sampleSteps } from './torch_twin.js';

export const diffaeParams = z.strictObject({
  ...diffusionParams,
  alpha: z.number().default(3).describe('edit strength α along the unit classifier direction (normalised z_sem space)'),
  contrast_source: z
    .boolean()
    .default(true)
    .describe('direction: target − source classifier weights (else target − mean of the others)'),
});
export type DiffaeParams = z.infer<typeof diffaeParams>;

export const diffae: Method<DiffaeParams> = {
  name: 'diffae',
  resources: { cpus: 2, mem: '8G', time: '2:00:00' },
  // v2: τ_infer calibrated under the device lock (#30); the images are v1's, the times are not comparable.
  version: 2,
  description:
    'DiffAE: edit the semantic code along a linear attribute classifier, decode with the inverted stochastic code.',
  params: diffaeParams,
  torch: {
    inputs: baselineInputs,
    // The direction as the world's DiffAeModels.direction is asked for it: the attribute, the
    // target and (contrast_source) the source value, with the attribute's value order, which
    // indexes the classifier's columns (the judge's order is the dataset's, as the world's).
    plan: (p, world) => {
      const ae = worldPart(world, 'diffae', 'the diffae baseline');
      const prompt = promptOf(world, p.prompt);
      const values = worldPart(
        world,
        'judge',
        'the diffae baseline on the torch engine (the attribute value order)',
      ).valuesOf(prompt.attribute);
      const scheduler = ddimFor(ae.scheduler, p.steps, 0);
      return {
        alpha: p.alpha,
        direction: {
          attribute: prompt.attribute,
          target: prompt.target,
          source: (p.contrast_source && prompt.source) || null,
          values,
        },
        latent_shape: latentOf(world),
        invert: invertSteps(scheduler),
        sample: sampleSteps(scheduler),
        ...batchLayout(p.eval_images, p.batch),
      };
    },
    result: (p) => ({ alpha: p.alpha }),
  },
  async run(ctx) {
    const p = ctx.params;
    const world = loadWorld(ctx.world);
    const ae = world.diffae;
    if (!ae)
      throw new UserError(`world ${world.name} has no DiffAE models (the diffae baseline needs its own autoencoder)`);
    const prompt = promptOf(world, p.prompt);
    const scheduler = ddimFor(ae.scheduler, p.steps, 0);
    const direction = ae.direction(prompt.attribute, prompt.target, p.contrast_source ? prompt.source : undefined);
    const originals = await sourceImages(world, prompt.id, p.eval_images, p.sources);
    const edits = await editTimed(world, originals, p.batch, (x) => {
      const b = x.shape[0];
      const shape = latentShape(world, b);
      const zsem = ae.encode(x);
      const zEdit = ae.denormalise(tf.add(ae.normalise(zsem), tf.mul(direction, p.alpha)) as tf.Tensor2D);
      const t = (v: number) => tf.fill([b], v) as tf.Tensor1D;
      const xT = ddimInvertTensor((zt, v) => ae.eps(zt, t(v), zsem), scheduler, world.diffusion.encode(x), shape);
      return world.diffusion.decode(ddimSampleTensor((zt, v) => ae.eps(zt, t(v), zEdit), scheduler, xT, shape));
    });
    direction.dispose();
    return { ...(await inferenceOnlyResult(ctx, world, prompt, originals, edits)), alpha: p.alpha };
  },
};
