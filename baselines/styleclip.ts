/**
 * StyleCLIP latent mapper (Patashnik et al. 2021): the same LevelsMapper as SDD, trained with a
 * CLIP loss instead of diffusion guidance, plus L2 and identity terms (StyleCLIP's weights by
 * default: CLIP 1.0, L2 0.8, ID 0.1). The CLIP loss is the published mapper's global one by
 * default, 1 − cos(E_I(x′), E_T(target)) (method version 2); the directional loss of
 * StyleGAN-NADA, 1 − cos(E_I(x′) − E_I(x), E_T(target) − E_T(source)), is an option (it was the
 * default of version 1). The mapper's PixelNorm axis is the released one unless set otherwise.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { streamRng } from '../src/util/rng.js';
import { loadWorld } from '../src/world/registry.js';
import { MAPPER_DEFAULTS } from '../src/sdd/mapper.js';
import { createMapper, trainMapper, type GuidanceAt } from '../src/sdd/distill.js';
import { editResult, mapperEdits, promptOf, trainCodes, sourcesParam } from '../src/methods/editing.js';
import type { Method, TorchTwin } from '../src/methods/types.js';
import type { EditPromptSpec, World } from '../src/world/types.js';
import { calibration } from '../src/sdd/timing.js';
import { dimsOf, editPlan, mapperInitShape, mapperPlan } from '../src/sdd/twin.js';

export const styleclipParams = z.strictObject({
  prompt: z.string().describe('edit prompt id of the world'),
  iterations: z.number().int().positive().default(300),
  batch: z.number().int().positive().default(2),
  lr: z.number().positive().default(5e-3),
  weight_decay: z.number().nonnegative().default(0),
  lambda_clip: z.number().nonnegative().default(1),
  lambda_l2: z.number().nonnegative().default(0.8),
  lambda_id: z.number().nonnegative().default(0.1),
  clip_loss: z
    .enum(['global', 'directional'])
    .default('global')
    .describe("global: StyleCLIP's published mapper loss; directional: StyleGAN-NADA's"),
  train_images: z.number().int().positive().default(256),
  mapper: z
    .strictObject({
      coarse: z.boolean().default(false),
      medium: z.boolean().default(true),
      fine: z.boolean().default(true),
      step: z.number().positive().default(0.1),
      pixel_norm: z
        .enum(['across_levels', 'per_level'])
        .default(MAPPER_DEFAULTS.pixel_norm)
        .describe("PixelNorm axis (StyleCLIP's code: across the group's levels)"),
    })
    .prefault({}),
  sources: sourcesParam,
  eval_images: z.number().int().positive().default(100),
});
export type StyleclipParams = z.infer<typeof styleclipParams>;

function styleclipMapper(p: StyleclipParams) {
  return {
    ...MAPPER_DEFAULTS,
    levels: { coarse: p.mapper.coarse, medium: p.mapper.medium, fine: p.mapper.fine },
    step: p.mapper.step,
    pixel_norm: p.mapper.pixel_norm,
  };
}

/**
 * StyleCLIP's guidance term: λ_CLIP·(1 − mean cos) of the global or directional CLIP loss, over
 * text embeddings computed once (the caller disposes them).
 */
export function clipTerm(
  world: World,
  p: StyleclipParams,
  prompt: EditPromptSpec,
): { at: GuidanceAt; dispose(): void } {
  const unit = (e: tf.Tensor) => tf.div(e, tf.norm(e, 2, -1, true));
  // The text side is fixed for the run: built in one tidy, so only the three kept tensors outlive it.
  const [target, source, direction] = tf.tidy(() => {
    const [t, s] = tf.unstack(unit(world.clip.textEmbed([prompt.text, prompt.sourceText])));
    return [t, s, unit(tf.sub(t, s))];
  });
  return {
    at: () => ({
      scalars: {},
      loss: (edited, original) => {
        const e = unit(world.clip.imageEmbed(edited));
        const cos =
          p.clip_loss === 'global'
            ? tf.sum(tf.mul(e, target), 1)
            : tf.sum(tf.mul(unit(tf.sub(e, unit(world.clip.imageEmbed(original())))), direction), 1);
        return tf.mul(tf.sub(1, tf.mean(cos)), p.lambda_clip) as tf.Scalar;
      },
    }),
    dispose: () => tf.dispose([target, source, direction]),
  };
}

/** The torch twin checkpoints its training this often (the TS run does not checkpoint). */
const TWIN_CHECKPOINT_EVERY = 100;

/**
 * The PyTorch twin (python/sdd_torch/methods/styleclip.py). Its only Gaussian draw is the mapper
 * init (`mapper_init`); the batch indices come from the same step streams as here.
 */
const styleclipTwin: TorchTwin<StyleclipParams> = {
  inputs: (p, world) => ({
    eval_images: p.eval_images,
    sources: p.sources,
    train_images: p.train_images,
    noise: { mapper_init: mapperInitShape(styleclipMapper(p), dimsOf(world)) },
  }),
  plan(p, world) {
    return {
      mapper: mapperPlan(styleclipMapper(p), world),
      checkpoint_every: TWIN_CHECKPOINT_EVERY,
      ...editPlan(p.eval_images),
    };
  },
  result: (p) => ({ clip_loss: p.clip_loss }),
};

export const styleclip: Method<StyleclipParams> = {
  name: 'styleclip',
  resources: { cpus: 2, mem: '8G', time: '2:00:00' },
  // v2: the published global CLIP loss by default; PixelNorm across the group's levels.
  // v3: τ_train and τ_infer calibrated under the device lock (#30); images as v2's.
  version: 3,
  description: 'StyleCLIP latent mapper: LevelsMapper trained with a CLIP loss (+ L2, ID).',
  params: styleclipParams,
  torch: styleclipTwin,
  async run(ctx) {
    const p = ctx.params;
    const world = loadWorld(ctx.world);
    const prompt = promptOf(world, p.prompt);
    const ms = styleclipMapper(p);
    const trainW = trainCodes(world, p.train_images);
    const clip = clipTerm(world, p, prompt);
    const mapper = createMapper(world, ms, streamRng(ctx.seed, 'mapper-init').int(2 ** 31));
    const cal = calibration('train', 'iteration', p.iterations);
    await trainMapper(
      world,
      mapper,
      trainW,
      { ...p, mapper: ms },
      clip.at,
      (step) => streamRng(ctx.seed, `step${step}`),
      {
        signal: ctx.signal,
        calibration: cal,
        onStep: (step, s) => (ctx.metric(step, s), ctx.progress(step + 1, p.iterations, 'train')),
      },
    ).finally(() => cal.release());
    const tauTrain = cal.total;
    clip.dispose();
    trainW.dispose();
    const { originals, edited, tauInfer, timing } = await mapperEdits(world, mapper, ms, prompt.id, p);
    mapper.dispose();
    return {
      ...(await editResult(ctx, world, prompt, originals, edited, {
        tau_train_s: tauTrain,
        tau_infer_s: tauInfer,
        timing: { train: cal.record(), infer: timing },
      })),
      clip_loss: p.clip_loss,
    };
  },
};
