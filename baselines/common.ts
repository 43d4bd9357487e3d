/** Parameters and helpers the diffusion baselines share (DDIM protocol of the paper: 50 steps). */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { cfgEps, type EpsFn } from '../src/diffusion/pipelines/sample.js';
import type { World } from '../src/world/types.js';
import { evaluationSources, sourcesParam, type SourceMode } from '../src/methods/editing.js';

export const diffusionParams = {
  prompt: z.string().describe('edit prompt id of the world'),
  steps: z.number().int().positive().default(50).describe('DDIM steps (the paper: 50)'),
  eta: z.number().min(0).default(0).describe('DDIM η'),
  eval_images: z.number().int().positive().default(100).describe('m: test images edited'),
  sources: sourcesParam,
  batch: z.number().int().positive().default(50).describe('images per batch'),
};

/** ε̂ for a batch of b images under `text` with CFG (guidance 1: the conditional model alone). */
export function textEps(world: World, text: string, b: number, guidance: number): { eps: EpsFn; dispose(): void } {
  const cond = world.diffusion.textCondition(Array(b).fill(text));
  if (guidance === 1) {
    const ctx = tf.tensor3d(cond.context, [b, cond.tokens, cond.dim]);
    const mask = tf.tensor2d(cond.mask, [b, cond.tokens]);
    return { eps: (z, t) => world.diffusion.eps(z, tf.fill([b], t) as tf.Tensor1D, ctx, mask), dispose: () => tf.dispose([ctx, mask]) };
  }
  return cfgEps(world.diffusion.eps, cond, world.diffusion.textCondition(Array(b).fill('')), guidance);
}

export function latentShape(world: World, b: number): [number, number, number, number] {
  return [b, ...world.diffusion.latentShape];
}

/** The evaluation images of a prompt (no W+ needed by the diffusion baselines). */
export function sourceImages(world: World, promptId: string, m: number, mode: SourceMode): Float32Array {
  const { images, w } = evaluationSources(world, promptId, m, mode);
  w.dispose();
  return images;
}
