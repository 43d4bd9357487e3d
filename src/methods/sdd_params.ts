/**
 * SDD's parameters (method.params of an sdd run): every choice the paper leaves open is one, with
 * the authors' released code's value as its default where the code fixes one. Parsed by the
 * method (sdd.ts), its torch twin (sdd_twin.ts) and `sdd hqs`.
 */
import { z } from 'zod';
import { sourcesParam } from './editing.js';
import type { EditPromptSpec } from '../world/types.js';
import { GUIDANCE_DEFAULTS, type GuidancePrompt } from '../sdd/guidance.js';
import { MAPPER_DEFAULTS } from '../sdd/mapper.js';

const guidance = z.strictObject({
  guidance_scale: z
    .number()
    .positive()
    .default(GUIDANCE_DEFAULTS.guidance_scale)
    .describe('CFG scale s of ε̂ (released code: 100)'),
  weighting: z.enum(['one_minus_alpha', 'one', 'sqrt_one_minus_alpha']).default('one_minus_alpha').describe('w(t)'),
  noise: z.enum(['random', 'zero']).default('random').describe("noise type ('zero': ε = 0)"),
  top_k: z
    .number()
    .int()
    .positive()
    .nullable()
    .default(null)
    .describe('keep the k largest |g| over the batch (null: all)'),
  negative: z
    .enum(['empty', 'source'])
    .default('empty')
    .describe("ε̂'s base branch: the empty prompt (released code) or the edit's source text"),
});

export const sddParams = z.strictObject({
  prompt: z.string().describe('edit prompt id of the world (e.g. hair_color:black->white)'),
  iterations: z.number().int().positive().default(300),
  batch: z.number().int().positive().default(2),
  lr: z.number().positive().default(5e-3).describe('AdamW learning rate'),
  weight_decay: z.number().nonnegative().default(2e-3),
  lambda_l2: z.number().nonnegative().default(10),
  lambda_id: z.number().nonnegative().default(1),
  vae_sample: z
    .boolean()
    .default(true)
    .describe('diffusion latents as a posterior sample (SD .sample()) rather than the mean'),
  train_images: z.number().int().positive().default(256).describe('training images, inverted to W+ once'),
  guidance: guidance.prefault({}),
  mapper: z
    .strictObject({
      coarse: z.boolean().default(false),
      medium: z.boolean().default(true),
      fine: z.boolean().default(true),
      step: z.number().positive().default(MAPPER_DEFAULTS.step).describe("w' = w + step·M(w)"),
      layers: z.number().int().positive().default(MAPPER_DEFAULTS.layers),
      lr_mul: z.number().positive().default(MAPPER_DEFAULTS.lr_mul),
      pixel_norm: z
        .enum(['across_levels', 'per_level'])
        .default(MAPPER_DEFAULTS.pixel_norm)
        .describe(
          "PixelNorm axis: across the group's levels per feature (released code) or each level's vector (method version 1)",
        ),
    })
    .prefault({}),
  selection: z
    .strictObject({
      strategy: z.enum(['random', 'threshold', 'largest']).default('threshold'),
      xi: z.number().optional().describe('threshold ξ, in the form of hqs.form'),
      range: z
        .tuple([z.number().int(), z.number().int()])
        .default([20, 980])
        .describe('random: t uniform over this range'),
    })
    .prefault({}),
  hqs: z
    .strictObject({
      images: z.number().int().positive().default(32).describe('K images averaged per timestep (released code: 200)'),
      from: z.number().int().min(0).default(50),
      to: z.number().int().max(999).default(950),
      stride: z.number().int().positive().default(50),
      form: z
        .enum(['released', 'eq11-12'], {
          error: "expected 'released' or 'eq11-12' (the [-1, 1] / [0, 1] choice is hqs.scale: paper | code)",
        })
        .default('released')
        .describe(
          'released: average N, H over images, then normalise over t, spatial softmax of the channel mean; eq11-12: per-image normalisation, softmax over H·W·C',
        ),
      scale: z
        .enum(['paper', 'code'])
        .default('paper')
        .describe('paper: N̄ − H̄ ∈ [−1, 1]; code: (N̄ + 1 − H̄)/2 ∈ [0, 1]'),
      top_k_per: z
        .enum(['image', 'batch'])
        .default('image')
        .describe('guidance top-k in the scan: per image (released scan) or over the K images'),
      mapper_step: z.number().default(0.1).describe('scan images are G(w + step·M(w)) with an untrained mapper'),
    })
    .prefault({}),
  sources: sourcesParam,
  eval_images: z.number().int().positive().default(100).describe('m: test images edited per prompt'),
  checkpoint_every: z.number().int().positive().default(100),
});
export type SddParams = z.infer<typeof sddParams>;

/** The mapper block as createMapper and the twins take it. */
export function mapperSettings(p: SddParams) {
  const { coarse, medium, fine, step, layers, lr_mul, pixel_norm } = p.mapper;
  return { levels: { coarse, medium, fine }, pixel_norm, step, layers, lr_mul };
}

/** The guidance texts of an edit prompt under the run's settings. */
export function guidancePrompt(p: SddParams, prompt: EditPromptSpec): GuidancePrompt {
  return { text: prompt.text, negative: p.guidance.negative === 'source' ? prompt.sourceText : '' };
}
