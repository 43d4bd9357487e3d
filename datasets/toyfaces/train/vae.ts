/** Training and evaluation of the first-stage VAE (datasets/toyfaces/models/vae.ts). */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { WorkerPool } from '../../../src/backend/pool.js';
import { writeFileAtomic } from '../../../src/util/atomic.js';
import type { Params } from '../../../src/nn/params.js';
import { batchIndices, CACHE_DIR, floatBatch, loadImageSet, type ImageSet } from '../cache.js';
import { loadParams, readCard } from '../zoo/store.js';
import { psnr, vaeDecode, vaeEncode, VAE_DEFAULT, type VaeConfig } from '../models/vae.js';
import { configOf } from '../models/configs.js';
import { AttributesKept } from './judge.js';
import { readBatches, type ZooTrainSpec } from './common.js';

const LATENT = 8;

/**
 * Mean reconstruction PSNR (posterior mean, decoded, clipped to [0,1]) and its spread, and the
 * attributes the reconstructions keep (./judge.ts).
 */
async function evalVae(params: Params, cfg: VaeConfig, set: ImageSet): Promise<Record<string, unknown>> {
  const kept = new AttributesKept(set);
  let values: Float32Array;
  let attributesKept: Record<string, unknown>;
  try {
    // PSNR per image, per batch on the device; one read at the end.
    const parts: tf.Tensor[] = [];
    for (const idx of batchIndices(set.n, 200)) {
      parts.push(
        tf.tidy(() => {
          const x = tf.tensor4d(floatBatch(set, idx), [idx.length, set.size, set.size, 3]);
          const recon = vaeDecode(params, vaeEncode(params, x, cfg).mean, cfg);
          kept.add(idx, recon);
          return psnr(recon, x);
        }),
      );
    }
    values = await readBatches(parts);
    attributesKept = await kept.result();
  } finally {
    kept.dispose();
  }
  const sorted = [...values].sort((a, b) => a - b);
  const r = (v: number) => Math.round(v * 1000) / 1000;
  return {
    eval: {
      split: 'test',
      n: set.n,
      latent: `${LATENT}x${LATENT}x${cfg.latentChannels}`,
      decode_from: 'posterior mean',
    },
    psnr_db: r(values.reduce((a, b) => a + b, 0) / values.length),
    psnr_p05_db: r(sorted[Math.floor(0.05 * sorted.length)]),
    attributes_kept: attributesKept,
  };
}

/** 1 / std of posterior means over (part of) the train set: SD's scale_factor, measured. */
async function latentScale(params: Params, cfg: VaeConfig, set: ImageSet): Promise<number> {
  let s = 0;
  let s2 = 0;
  let n = 0;
  // Summed on the host in float64 in image order, as before: the card's scale factor is exact.
  for (const v of await encodeLatents(params, cfg, set)) {
    s += v;
    s2 += v * v;
    n++;
  }
  const variance = s2 / n - (s / n) ** 2;
  return Math.round((1 / Math.sqrt(variance)) * 1e5) / 1e5;
}

export const VAE_SPEC: ZooTrainSpec<'vae'> = {
  name: 'vae',
  model: 'vae',
  config: VAE_DEFAULT,
  role: 'first-stage autoencoder (the Stable Diffusion VAE role): 32×32×3 ↔ 8×8×4 latent',
  needs: ['clip', 'featnet'],
  // 4000 steps (version 3): at 3000 a fresh retrain reached 27.84 dB, under the 28 dB bar.
  version: 3,
  settings: { steps: 4000, batch: 32, lr: 2e-3, seed: 0, trainN: 24_000, evalN: 2_000, size: 32, checkpointEvery: 200 },
  targets(_set, idx, rng) {
    const y = new Float32Array(idx.length * LATENT * LATENT * VAE_DEFAULT.latentChannels);
    for (let i = 0; i < y.length; i++) y[i] = rng.normal();
    return { y, shape: [LATENT, LATENT, VAE_DEFAULT.latentChannels] };
  },
  async finalize(params, pool, o) {
    const sample = await loadImageSet('train', Math.min(o.trainN, 4000), o.size, pool);
    const perceptual = VAE_DEFAULT.perceptual && {
      ...VAE_DEFAULT.perceptual,
      sha256: readCard(VAE_DEFAULT.perceptual.model).weights.sha256,
    };
    return { scaleFactor: await latentScale(params, VAE_DEFAULT, sample), ...(perceptual ? { perceptual } : {}) };
  },
  async evaluate(params, pool, o) {
    const test = await loadImageSet('test', o.evalN, o.size, pool);
    return await evalVae(params, VAE_DEFAULT, test);
  },
};

/** Posterior means of a set's images, [n, 8, 8, C] (unscaled), on the device: the caller owns it. */
function encodeLatentsTensor(params: Params, cfg: VaeConfig, set: ImageSet): tf.Tensor4D {
  const parts = batchIndices(set.n, 200).map((idx) =>
    tf.tidy(() => vaeEncode(params, tf.tensor4d(floatBatch(set, idx), [idx.length, set.size, set.size, 3]), cfg).mean),
  );
  if (parts.length === 0) return tf.zeros([0, LATENT, LATENT, cfg.latentChannels]);
  if (parts.length === 1) return parts[0];
  const all = tf.concat(parts);
  tf.dispose(parts);
  return all;
}

/** Posterior means of a set's images, [n, 8, 8, C] (unscaled): encoded batch by batch, read once. */
export async function encodeLatents(params: Params, cfg: VaeConfig, set: ImageSet): Promise<Float32Array> {
  const z = encodeLatentsTensor(params, cfg, set);
  try {
    return (await z.data()) as Float32Array;
  } finally {
    z.dispose();
  }
}

/**
 * The train images and their latents under the shipped VAE, scaled by its scale factor (what
 * latent diffusion trains on); cached per VAE weights hash under .cache/zoo-train/.
 */
export async function scaledLatents(
  o: { trainN: number; size: number },
  pool: WorkerPool,
  log: (s: string) => void,
): Promise<{ set: ImageSet; latents: Float32Array; scale: number }> {
  const vae = loadParams('vae');
  const cfg = configOf('vae', vae.card.architecture);
  if (!cfg.scaleFactor) throw new Error('zoo/vae/card.json has no scaleFactor');
  const set = await loadImageSet('train', o.trainN, o.size, pool);
  const dir = join(CACHE_DIR, '..', 'zoo-train');
  const file = join(dir, `latents-${vae.card.weights.sha256.slice(0, 12)}-${o.trainN}-${o.size}.f32`);
  let latents: Float32Array;
  if (existsSync(file)) latents = new Float32Array(readFileSync(file).buffer.slice(0));
  else {
    log(`encoding ${o.trainN} train images with the VAE (cached after the first time)`);
    latents = await encodeLatents(vae.params, cfg, set);
    for (let i = 0; i < latents.length; i++) latents[i] *= cfg.scaleFactor;
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(file, new Uint8Array(latents.buffer, latents.byteOffset, latents.byteLength));
  }
  vae.params.dispose();
  return { set, latents, scale: cfg.scaleFactor };
}
