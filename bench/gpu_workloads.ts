/**
 * bench/gpu.ts's tfjs workloads (see its header for what each one times): each returns the
 * per-iteration milliseconds of its timed iterations, warm-up excluded.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { deviceFault } from '../src/backend/index.js';
import { DDIM_SD, DdimScheduler } from '../src/diffusion/schedulers/ddim.js';
import { cfgEps, ddimSampleTensor, repeatCondition } from '../src/diffusion/pipelines/sample.js';
import { createMapper, distill, LOG_EVERY } from '../src/sdd/distill.js';
import { selectTimesteps } from '../src/sdd/hqs.js';
import { loadExperiment } from '../src/experiments/load.js';
import { expandExperiment } from '../src/experiments/expand.js';
import { registerBuiltinMethods } from '../src/methods/index.js';
import { guidancePrompt, type SddParams } from '../src/methods/sdd.js';
import { invert, promptOf } from '../src/methods/editing.js';
import { streamRng, tfSeed } from '../src/util/rng.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import type { World } from '../src/world/types.js';
import { timeIt, withUnetTrainStep } from './common.js';

const SDD_EXPERIMENT = join(PROJECT_ROOT, 'experiments', 'table1', 'sdd.yaml');

export interface Sizes {
  unet: { sizes: number[]; batches: number[]; steps: number; warmup: number };
  ddim: { images: number; steps: number; guidance: number; repeats: number; warmup: number };
  /** Timed windows of LOG_EVERY iterations after one warm-up window; trainImages overrides the yaml's. */
  sdd: { windows: number; trainImages: number | null };
  featnet: { images: number; batch: number; repeats: number; warmup: number };
}

/** Runs long GPU work against a device fault (lost device, out of memory), which tfjs never surfaces. */
export const guarded = <T>(p: Promise<T>): Promise<T> => Promise.race([p, deviceFault()]);

export async function unetStep(
  size: number,
  batch: number,
  sz: Sizes['unet'],
): Promise<{ ms: number[]; params: number }> {
  return withUnetTrainStep(batch, size, async (step, params) => ({
    ms: await timeIt(step, sz.steps, sz.warmup),
    params,
  }));
}

export async function ddimCfg(world: World, sz: Sizes['ddim']): Promise<{ ms: number[]; prompt: string }> {
  const text = world.prompts[0].text;
  const n = sz.images;
  const cond = repeatCondition(await world.diffusion.textCondition([text]), n);
  const uncond = repeatCondition(await world.diffusion.textCondition(['']), n);
  const guided = cfgEps(world.diffusion.eps, cond, uncond, sz.guidance);
  const scheduler = new DdimScheduler({ ...DDIM_SD, steps: sz.steps, eta: 0 });
  const shape = [n, ...world.diffusion.latentShape] as [number, number, number, number];
  const zT = tf.randomNormal(shape, 0, 1, 'float32', tfSeed(0)) as tf.Tensor4D;
  try {
    const ms = await timeIt(
      async () => {
        const z = ddimSampleTensor(guided.eps, scheduler, zT, shape);
        await z.data(); // the one read
        z.dispose();
      },
      sz.repeats,
      sz.warmup,
    );
    return { ms, prompt: text };
  } finally {
    guided.dispose();
    zT.dispose();
  }
}

/** Table 1's SDD settings: the first run of experiments/table1/sdd.yaml (its first prompt, seed 0). */
function sddSettings(): SddParams {
  registerBuiltinMethods(); // the experiment loader validates method params through the registry
  const { experiment } = loadExperiment(SDD_EXPERIMENT);
  return expandExperiment(experiment, SDD_EXPERIMENT)[0].config.method.params as SddParams;
}

export async function sddIteration(
  world: World,
  sz: Sizes['sdd'],
): Promise<{ ms: number[]; settings: Record<string, unknown> }> {
  const p = sddSettings();
  const prompt = guidancePrompt(p, promptOf(world, p.prompt));
  // The same MapperSettings as src/methods/sdd.ts builds from its params.
  const { coarse, medium, fine, step, layers, lr_mul, pixel_norm } = p.mapper;
  const ms = { levels: { coarse, medium, fine }, pixel_norm, step, layers, lr_mul };
  const trainImages = sz.trainImages ?? p.train_images;
  const trainW = invert(world, world.trainImages(trainImages));
  // Which t ∈ S an iteration draws does not change its cost; S = every t of the random range.
  const timesteps = selectTimesteps([], [], { strategy: 'random', range: p.selection.range }).timesteps;
  const mapper = createMapper(world, ms, 0);
  const iterations = LOG_EVERY * (1 + sz.windows);
  const marks: number[] = [];
  try {
    await distill(
      world,
      mapper,
      trainW,
      prompt,
      timesteps,
      { ...p, mapper: ms, iterations },
      (s) => streamRng(0, `step${s}`),
      {
        // Called right after distill's awaited read of LOG_EVERY steps' losses: the GPU is idle
        // there, LOG_EVERY whole iterations (each one's AdamW step included) after the last mark.
        onStep: (s) => {
          if ((s + 1) % LOG_EVERY === 0) marks.push(performance.now());
        },
      },
    );
  } finally {
    mapper.dispose();
    trainW.dispose();
  }
  const samples = marks.slice(1).map((t, i) => (t - marks[i]) / LOG_EVERY);
  return {
    ms: samples,
    settings: {
      prompt: p.prompt,
      batch: p.batch,
      train_images: trainImages,
      iterations,
      log_every: LOG_EVERY,
      guidance_scale: p.guidance.guidance_scale,
      vae_sample: p.vae_sample,
      mapper: p.mapper,
    },
  };
}

export async function featnet(world: World, sz: Sizes['featnet']): Promise<number[]> {
  const s = world.imageSize;
  const images = tf.tensor4d(world.trainImages(sz.images), [sz.images, s, s, 3]);
  try {
    return await timeIt(
      async () => {
        const parts: tf.Tensor2D[] = [];
        for (let i = 0; i < sz.images; i += sz.batch) {
          const k = Math.min(sz.batch, sz.images - i);
          parts.push(tf.tidy(() => world.fid.features(tf.slice(images, [i, 0, 0, 0], [k, -1, -1, -1]))));
        }
        const all = tf.concat(parts);
        await all.data(); // the one read
        tf.dispose([all, ...parts]);
      },
      sz.repeats,
      sz.warmup,
    );
  } finally {
    images.dispose();
  }
}
