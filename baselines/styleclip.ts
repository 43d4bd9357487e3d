/**
 * StyleCLIP latent mapper (Patashnik et al. 2021): the same LevelsMapper as SDD, trained with a
 * CLIP loss instead of diffusion guidance, plus L2 and identity terms (StyleCLIP's weights by
 * default: CLIP 1.0, L2 0.8, ID 0.1). The CLIP loss is directional by default (the issue's
 * protocol) — 1 − cos(E_I(x′) − E_I(x), E_T(target) − E_T(source)) — or StyleCLIP's global
 * 1 − cos(E_I(x′), E_T(target)).
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { streamRng } from '../src/util/rng.js';
import { loadWorld } from '../src/world/registry.js';
import { MAPPER_DEFAULTS } from '../src/sdd/mapper.js';
import { createMapper, editLatents, trainMapper } from '../src/sdd/distill.js';
import { editResult, editTimed, evaluationSources, invert, promptOf, saveEditGrid, sourcesParam } from '../src/methods/editing.js';
import type { Method } from '../src/methods/types.js';

export const styleclipParams = z.strictObject({
  prompt: z.string().describe('edit prompt id of the world'),
  iterations: z.number().int().positive().default(300),
  batch: z.number().int().positive().default(2),
  lr: z.number().positive().default(5e-3),
  weight_decay: z.number().nonnegative().default(0),
  lambda_clip: z.number().nonnegative().default(1),
  lambda_l2: z.number().nonnegative().default(0.8),
  lambda_id: z.number().nonnegative().default(0.1),
  clip_loss: z.enum(['directional', 'global']).default('directional'),
  train_images: z.number().int().positive().default(256),
  mapper: z
    .strictObject({ coarse: z.boolean().default(false), medium: z.boolean().default(true), fine: z.boolean().default(true), step: z.number().positive().default(0.1) })
    .prefault({}),
  sources: sourcesParam,
  eval_images: z.number().int().positive().default(100),
});
export type StyleclipParams = z.infer<typeof styleclipParams>;


export const styleclip: Method<StyleclipParams> = {
  name: 'styleclip',
  version: 1,
  description: 'StyleCLIP latent mapper: LevelsMapper trained with a CLIP loss (+ L2, ID).',
  params: styleclipParams,
  async run(ctx) {
    const p = ctx.params;
    const world = loadWorld(ctx.world);
    const prompt = promptOf(world, p.prompt);
    const ms = { ...MAPPER_DEFAULTS, levels: { coarse: p.mapper.coarse, medium: p.mapper.medium, fine: p.mapper.fine }, step: p.mapper.step };
    const trainW = invert(world, world.trainImages(p.train_images));
    const text = world.clip.textEmbed([prompt.text, prompt.sourceText]);
    const [target, source] = tf.unstack(text);
    const direction = tf.div(tf.sub(target, source), tf.norm(tf.sub(target, source)));
    const unit = (e: tf.Tensor) => tf.div(e, tf.norm(e, 2, -1, true));
    const mapper = createMapper(world, ms, streamRng(ctx.seed, 'mapper-init').int(2 ** 31));
    const t0 = performance.now();
    await trainMapper(
      world,
      mapper,
      trainW,
      { ...p, mapper: ms },
      () => ({
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
      (step) => streamRng(ctx.seed, `step${step}`),
      { signal: ctx.signal, onStep: (step, s) => (ctx.metric(step, s), ctx.progress(step + 1, p.iterations, 'train')) },
    );
    const tauTrain = (performance.now() - t0) / 1000;
    tf.dispose([trainW, text, target, source, direction]);
    const { images: originals, w } = evaluationSources(world, prompt.id, p.eval_images, p.sources);
    const { edited, tauInfer } = await editTimed(world, originals, p.eval_images, (x, offset) => editLatents(world, mapper, tf.slice(w, [offset, 0, 0], [x.shape[0], -1, -1]) as tf.Tensor3D, ms));
    w.dispose();
    mapper.dispose();
    saveEditGrid(ctx, world, originals, edited);
    return { ...editResult(ctx, world, prompt, originals, edited, { tau_train_s: tauTrain, tau_infer_s: tauInfer }), clip_loss: p.clip_loss };
  },
};
