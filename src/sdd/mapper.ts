/**
 * StyleCLIP's LevelsMapper, as SDD uses it: for each enabled level group (coarse / medium /
 * fine) one MLP, PixelNorm then 4 × EqualLinear(dim, dim, lr_mul 0.01) with fused leaky ReLU
 * (slope 0.2, gain √2), applied to every W+ level of the group; disabled groups output zeros.
 * EqualLinear stores weights as N(0, 1)/lr_mul and scales them by lr_mul/√in at run time, biases
 * start at 0 and are scaled by lr_mul: the learning rate a raw-weight optimizer sees is damped.
 * The edit is w' = w + step·M(w) (step 0.1 in the paper's code).
 *
 * PixelNorm's axis: the released code (StyleCLIP's mapper, which SDD reuses) feeds the group's
 * [B, n, dim] slice to PixelNorm(dim=1), i.e. it normalises each feature across the group's n
 * levels ('across_levels', the default). 'per_level' normalises each level's dim-vector (what
 * StyleGAN's own mapping network does, and what this code did before method version 2).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../nn/params.js';
import type { LevelGroup, StyleModels } from '../world/types.js';

export type PixelNormAxis = 'across_levels' | 'per_level';

export interface MapperSettings {
  levels: Record<LevelGroup, boolean>;
  pixel_norm: PixelNormAxis;
  layers: number;
  lr_mul: number;
  step: number;
}

export const MAPPER_DEFAULTS: MapperSettings = {
  levels: { coarse: false, medium: true, fine: true },
  pixel_norm: 'across_levels',
  layers: 4,
  lr_mul: 0.01,
  step: 0.1,
};

/** x / √(mean(x², axis) + 1e-8). */
export function pixelNorm(x: tf.Tensor, axis = -1): tf.Tensor {
  return tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), axis, true), 1e-8)));
}

export function equalLinear(p: Params, name: string, x: tf.Tensor2D, out: number, lrMul: number): tf.Tensor2D {
  const inDim = x.shape[1];
  const w = p.get(`${name}.weight`, [inDim, out], { kind: 'normal', std: 1 / lrMul });
  const b = p.get(`${name}.bias`, [out], { kind: 'zeros' });
  const y = tf.add(tf.matMul(x, tf.mul(w, lrMul / Math.sqrt(inDim))), tf.mul(b, lrMul));
  // fused_leaky_relu: leaky ReLU (0.2) of (xW + b), times √2.
  return tf.mul(tf.leakyRelu(y, 0.2), Math.SQRT2) as tf.Tensor2D;
}

/** M(w) for W+ [B, levels, dim]. */
export function levelsMapper(
  p: Params,
  wplus: tf.Tensor3D,
  style: Pick<StyleModels, 'groups'>,
  s: MapperSettings,
): tf.Tensor3D {
  const [b, , dim] = wplus.shape;
  const parts = (Object.keys(style.groups) as LevelGroup[])
    .sort((x, y) => style.groups[x][0] - style.groups[y][0])
    .map((g) => {
      const [from, to] = style.groups[g];
      const n = to - from;
      if (!s.levels[g]) return tf.zeros([b, n, dim]);
      const slice = tf.slice(wplus, [0, from, 0], [b, n, dim]);
      const normed = s.pixel_norm === 'across_levels' ? pixelNorm(slice, 1) : pixelNorm(slice, -1);
      let h = tf.reshape(normed, [b * n, dim]) as tf.Tensor2D;
      for (let l = 0; l < s.layers; l++) h = equalLinear(p, `mapper.${g}.${l}`, h, dim, s.lr_mul);
      return tf.reshape(h, [b, n, dim]);
    });
  return tf.concat(parts, 1) as tf.Tensor3D;
}

/** w' = w + step·M(w). */
export function applyMapper(
  p: Params,
  wplus: tf.Tensor3D,
  style: Pick<StyleModels, 'groups'>,
  s: MapperSettings,
): tf.Tensor3D {
  return tf.add(wplus, tf.mul(levelsMapper(p, wplus, style, s), s.step)) as tf.Tensor3D;
}
