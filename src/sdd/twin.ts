/**
 * What the PyTorch twins of the latent-mapper methods (SDD, StyleCLIP) share on the TS side: the
 * mapper block of the plan (settings plus the world's level groups) and the noise streams the
 * harness draws for them. tfjs's tf.randomNormal cannot be reproduced in torch, so every Gaussian
 * draw of a torch run comes from the contract's streams (our Rng): `mapper_init` [3 groups
 * (coarse, medium, fine), layers, dim, dim] N(0, 1) for the EqualLinear weights (scaled by 1/lr_mul
 * as the TS init's std), and per training step whatever the guidance draws.
 */
import { worldPart, type World } from '../world/types.js';
import type { MapperSettings } from './mapper.js';
import { INFER_CALIBRATION_UNITS } from './timing.js';

/** The order of the `mapper_init` stream's first axis (python/sdd_torch/sdd/mapper.py GROUP_ORDER). */
export const TWIN_GROUPS = ['coarse', 'medium', 'fine'] as const;

export interface TwinDims {
  /** W+ vector size. */
  dim: number;
  /** The diffusion latent [h, w, c]. */
  latent: number[];
}

/** The world's sizes the noise streams need. */
export function dimsOf(world: World): TwinDims {
  return { dim: worldPart(world, 'style', 'a latent mapper').dim, latent: [...world.diffusion.latentShape] };
}

/** The plan's mapper block: the settings and the world's level ranges, so Python keeps no defaults. */
export function mapperPlan(ms: MapperSettings, world: World): Record<string, unknown> {
  return { ...ms, levels: { ...ms.levels }, groups: worldPart(world, 'style', 'a latent mapper').groups };
}

/** One call of editTimed's edit: `count` images from `offset`; `seed` the batch's Rng seed (SDEdit). */
interface BatchPlan {
  offset: number;
  count: number;
  seed?: number;
}

/**
 * editTimed's calls (../methods/editing.ts): the untimed warm-up on image 0, then the batches, of
 * which the first `timed_batches` give τ_infer (their median per image: the calibration's units).
 * `seedOf` is the method's `new Rng(seed)` argument for a batch offset, sent as Rng takes it
 * (`>>> 0`), so the twin's port of Rng starts from the same state.
 */
export function batchLayout(
  m: number,
  batch: number,
  seedOf?: (offset: number) => number,
): { warmup: BatchPlan; batches: BatchPlan[]; timed_batches: number } {
  const at = (offset: number, count: number): BatchPlan => ({
    offset,
    count,
    ...(seedOf ? { seed: seedOf(offset) >>> 0 } : {}),
  });
  const batches: BatchPlan[] = [];
  for (let i = 0; i < m; i += batch) batches.push(at(i, Math.min(batch, m - i)));
  return { warmup: at(0, 1), batches, timed_batches: INFER_CALIBRATION_UNITS };
}

/** SDD's and StyleCLIP's edit: one batch of all m. */
export function editPlan(m: number): ReturnType<typeof batchLayout> {
  return batchLayout(m, m);
}

/** The `mapper_init` stream's shape. */
export function mapperInitShape(ms: MapperSettings, dims: TwinDims): number[] {
  return [TWIN_GROUPS.length, ms.layers, dims.dim, dims.dim];
}

/**
 * A mapper's weights from the `mapper_init` stream (what the torch twin does): weight =
 * fround(noise · (1/lr_mul)), biases 0 — for the parity test, which trains both sides from the
 * same init. `names`: the TS mapper's parameter names (Params.vars keys).
 */
export function mapperInitValues(
  names: Iterable<string>,
  ms: MapperSettings,
  noise: Float32Array,
  dim: number,
): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  const per = dim * dim;
  const std = 1 / ms.lr_mul;
  for (const name of names) {
    const [, group, layer, leaf] = name.split('.');
    if (leaf !== 'weight') {
      out.set(name, new Float32Array(dim));
      continue;
    }
    const at = (TWIN_GROUPS.indexOf(group as (typeof TWIN_GROUPS)[number]) * ms.layers + Number(layer)) * per;
    out.set(
      name,
      Float32Array.from(noise.subarray(at, at + per), (x) => x * std),
    );
  }
  return out;
}
