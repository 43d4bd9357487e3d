/** Parameters and helpers the diffusion baselines share (DDIM protocol of the paper: 50 steps). */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { cfgEps, repeatCondition, type Condition, type EpsFn } from '../src/diffusion/pipelines/sample.js';
import type { EditPromptSpec, World } from '../src/world/types.js';
import { evaluationSources, editResult, sourcesParam, type SourceMode } from '../src/methods/editing.js';
import type { MethodContext, ResultValue } from '../src/methods/types.js';
import type { TimingRecord } from '../src/util/calibration.js';

export const diffusionParams = {
  prompt: z.string().describe('edit prompt id of the world'),
  steps: z.number().int().positive().default(50).describe('DDIM steps (the paper: 50)'),
  eta: z.number().min(0).default(0).describe('DDIM η'),
  eval_images: z.number().int().positive().default(100).describe('m: test images edited'),
  sources: sourcesParam,
  batch: z.number().int().positive().default(50).describe('images per batch'),
};

/** A prompt's text condition and the empty prompt's, one row each, encoded once per run. */
export interface TextPair {
  cond: Condition;
  uncond: Condition;
}

export async function textPair(world: World, text: string): Promise<TextPair> {
  const [cond, uncond] = [await world.diffusion.textCondition([text]), await world.diffusion.textCondition([''])];
  return { cond, uncond };
}

/** ε̂ for a batch of b images under the pair's text with CFG (guidance 1: the conditional model alone). */
export function textEps(world: World, pair: TextPair, b: number, guidance: number): { eps: EpsFn; dispose(): void } {
  const cond = repeatCondition(pair.cond, b);
  if (guidance === 1) {
    const ctx = tf.tensor3d(cond.context, [b, cond.tokens, cond.dim]);
    const mask = tf.tensor2d(cond.mask, [b, cond.tokens]);
    return {
      eps: (z, t) => world.diffusion.eps(z, tf.fill([b], t) as tf.Tensor1D, ctx, mask),
      dispose: () => tf.dispose([ctx, mask]),
    };
  }
  return cfgEps(world.diffusion.eps, cond, repeatCondition(pair.uncond, b), guidance);
}

export function latentShape(world: World, b: number): [number, number, number, number] {
  return [b, ...world.diffusion.latentShape];
}

/** The evaluation images of a prompt (no W+ needed by the diffusion baselines). */
export async function sourceImages(world: World, promptId: string, m: number, mode: SourceMode): Promise<Float32Array> {
  // The test images themselves need no generator: a world without one (real) edits them directly.
  if (mode === 'real' && !world.codes) return world.sources(promptId, m);
  const { images, w } = await evaluationSources(world, promptId, m, mode);
  w.dispose();
  return images;
}

/** A training-free baseline's result (τ_train = 0): the grid and the common result of its timed edits. */
export function inferenceOnlyResult(
  ctx: MethodContext<unknown>,
  world: World,
  prompt: EditPromptSpec,
  originals: Float32Array,
  e: { edited: Float32Array; tauInfer: number; timing: TimingRecord },
): Promise<Record<string, ResultValue>> {
  const times = { tau_train_s: 0, tau_infer_s: e.tauInfer, timing: { infer: e.timing } };
  return editResult(ctx, world, prompt, originals, e.edited, times);
}
