/**
 * Style-based generator G: W+ → image, and its encoder E: image → W+ (the StyleGAN2 + e4e role).
 *
 * W+ is [B, levels, wdim]: one style vector per modulated conv, two per resolution (4², 8², 16²,
 * 32²), split coarse / medium / fine as StyleGAN's 18 layers are. Each conv is StyleGAN2's
 * modulated conv: input channels scaled by an affine map of the level's style, then
 * demodulated so every output channel has unit expected variance.
 * E predicts a base w and per-level offsets (e4e); a penalty on the offsets keeps W+ close to
 * W, which is what keeps latent edits well behaved.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../../src/nn/params.js';
import { conv2d, groupNormSilu, linear, silu, upsample2x } from '../../../src/nn/layers.js';
import type { PerceptualConfig } from './perceptual.js';

export interface StyleGenConfig {
  /** Channels at 4², 8², 16², 32² (two modulated convs each: levels = 2 × resolutions). */
  widths: number[];
  wdim: number;
  encoderWidths: number[];
  groups: number;
  /** Weight of the e4e offset penalty mean(Δ²) against per-pixel MSE. */
  deltaWeight: number;
  /**
   * An optional perceptual term on G(E(x)) (./perceptual.ts). Off by default: measured, it kept
   * more expression but cost the inversion PSNR bar (see train/stylegen.ts).
   */
  perceptual?: PerceptualConfig;
}

export const STYLEGEN_DEFAULT: StyleGenConfig = {
  widths: [96, 64, 48, 32],
  wdim: 64,
  encoderWidths: [32, 48, 64, 96],
  groups: 8,
  deltaWeight: 1e-3,
};

export const levelsOf = (cfg: StyleGenConfig) => 2 * cfg.widths.length;

/** Level ranges [from, to) of the coarse / medium / fine groups (4²–8², 16², 32²). */
export function levelGroups(cfg: StyleGenConfig): Record<'coarse' | 'medium' | 'fine', [number, number]> {
  const l = levelsOf(cfg);
  return { coarse: [0, l - 4], medium: [l - 4, l - 2], fine: [l - 2, l] };
}

/** StyleGAN2 modulated + demodulated 3×3 conv, per-sample style w [B, wdim]. */
export function modConv(p: Params, name: string, x: tf.Tensor4D, w: tf.Tensor2D, cout: number): tf.Tensor4D {
  const [b, , , cin] = x.shape;
  const s = tf.add(linear(p, `${name}.affine`, w, cin), 1) as tf.Tensor2D; // styles start at identity
  const weight = p.get(`${name}.weight`, [3, 3, cin, cout], { kind: 'normal', std: Math.sqrt(1 / (9 * cin)) });
  const y = tf.conv2d(tf.mul(x, tf.reshape(s, [b, 1, 1, cin])) as tf.Tensor4D, weight as tf.Tensor4D, 1, 'same');
  // σ[b,o]² = Σ_{k,i} (W[k,i,o]·s[b,i])² = (s² · Σ_k W²)[b,o]: demodulation without per-sample weights.
  const demod = tf.rsqrt(tf.add(tf.matMul(tf.square(s), tf.sum(tf.square(weight), [0, 1])), 1e-8));
  const bias = p.get(`${name}.bias`, [cout], { kind: 'zeros' });
  return tf.add(tf.mul(y, tf.reshape(demod, [b, 1, 1, cout])), bias) as tf.Tensor4D;
}

/** G: W+ [B, levels, wdim] → image [B, 32, 32, 3] in [0, 1] (not clipped). */
export function generate(p: Params, wplus: tf.Tensor3D, cfg: StyleGenConfig): tf.Tensor4D {
  const b = wplus.shape[0];
  const levels = tf.unstack(wplus, 1) as tf.Tensor2D[];
  const start = p.get('gen.const', [1, 4, 4, cfg.widths[0]], { kind: 'normal', std: 1 });
  let h = tf.tile(start, [b, 1, 1, 1]) as tf.Tensor4D;
  cfg.widths.forEach((width, i) => {
    if (i > 0) h = upsample2x(h);
    h = silu(modConv(p, `gen.res${i}.conv1`, h, levels[2 * i], width));
    h = silu(modConv(p, `gen.res${i}.conv2`, h, levels[2 * i + 1], width));
  });
  return tf.add(tf.mul(conv2d(p, 'gen.to_rgb', h, 3, 1), 0.5), 0.5) as tf.Tensor4D;
}

/** E: image → W+ as base w plus per-level offsets (returned too, for the penalty). */
export function encode(p: Params, x: tf.Tensor4D, cfg: StyleGenConfig): { wplus: tf.Tensor3D; delta: tf.Tensor3D } {
  let h = tf.sub(tf.mul(x, 2), 1) as tf.Tensor4D;
  cfg.encoderWidths.forEach((w, i) => {
    h = groupNormSilu(p, `enc.stage${i}.norm`, conv2d(p, `enc.stage${i}.conv`, h, w, 3, i === 0 ? 1 : 2), cfg.groups);
    h = groupNormSilu(p, `enc.stage${i}.norm2`, conv2d(p, `enc.stage${i}.conv2`, h, w), cfg.groups);
  });
  // Flattened (not pooled): where things are is part of the image the latent must carry.
  const flat = tf.reshape(h, [x.shape[0], -1]);
  const l = levelsOf(cfg);
  const base = tf.reshape(linear(p, 'enc.w', flat, cfg.wdim), [-1, 1, cfg.wdim]);
  const delta = tf.mul(tf.reshape(linear(p, 'enc.delta', flat, l * cfg.wdim), [-1, l, cfg.wdim]), 0.1) as tf.Tensor3D;
  return { wplus: tf.add(base, delta) as tf.Tensor3D, delta };
}
