/**
 * The two autoencoding losses that add a perceptual term on a frozen zoo model (the VAE, and G∘E of
 * the generator/encoder). They live on the training side because the frozen model comes from the
 * zoo, and the zoo's loader runs the models (zoo/trace.ts) to check each file: models/ never
 * imports the zoo, so the zoo can import models/ without a cycle.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../../src/nn/params.js';
import { perceptualDistance, type PerceptualConfig } from '../models/perceptual.js';
import { vaeDecode, vaeEncode, type VaeConfig } from '../models/vae.js';
import { encode, generate, type StyleGenConfig } from '../models/stylegen.js';
import { frozenParams } from '../zoo/store.js';
import { configOf } from '../models/configs.js';

/** loss + weight · perceptual distance, or loss alone when the config has no perceptual term. */
function withPerceptual(
  loss: tf.Scalar,
  x: tf.Tensor4D,
  out: tf.Tensor4D,
  perceptual: PerceptualConfig | undefined,
): tf.Scalar {
  if (!perceptual) return loss;
  const frozen = frozenParams(perceptual.model);
  const distance = perceptualDistance(x, out, frozen.params, configOf(perceptual.model, frozen.architecture));
  return tf.add(loss, tf.mul(distance, perceptual.weight)) as tf.Scalar;
}

/** y: the reparameterisation noise ε [B, 8, 8, C], drawn by the trainer from the step's seed. */
export function vaeLoss(p: Params, x: tf.Tensor4D, y: tf.Tensor, cfg: VaeConfig): tf.Scalar {
  const { mean, logvar } = vaeEncode(p, x, cfg);
  const z = tf.add(mean, tf.mul(tf.exp(tf.mul(logvar, 0.5)), tf.reshape(y, mean.shape))) as tf.Tensor4D;
  const out = vaeDecode(p, z, cfg);
  const rec = tf.mean(tf.square(tf.sub(out, x)));
  const kl = tf.mul(0.5, tf.mean(tf.sub(tf.add(tf.square(mean), tf.exp(logvar)), tf.add(logvar, 1))));
  const loss = tf.add(rec, tf.mul(kl, cfg.klWeight)) as tf.Scalar;
  return withPerceptual(loss, x, out, cfg.perceptual);
}

/** Autoencoder loss: per-pixel MSE of G(E(x)), the offset penalty and the perceptual term. y is unused. */
export function stylegenLoss(p: Params, x: tf.Tensor4D, _y: tf.Tensor, cfg: StyleGenConfig): tf.Scalar {
  const { wplus, delta } = encode(p, x, cfg);
  const out = generate(p, wplus, cfg);
  const rec = tf.mean(tf.square(tf.sub(out, x)));
  return withPerceptual(
    tf.add(rec, tf.mul(tf.mean(tf.square(delta)), cfg.deltaWeight)) as tf.Scalar,
    x,
    out,
    cfg.perceptual,
  );
}
