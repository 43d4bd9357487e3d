/**
 * Training and evaluation of the DiffAE pair (datasets/toyfaces/models/diffae.ts): encoder and
 * decoder trained jointly on the ε loss over VAE latents; then linear attribute classifiers on
 * normalised z_sem (DiffAE's manipulation directions), fitted on train images and stored with
 * the weights.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WorkerPool } from '../../../src/backend/pool.js';
import type { Params } from '../../../src/nn/params.js';
import { linear } from '../../../src/nn/layers.js';
import { DdimScheduler, DDIM_SD } from '../../../src/diffusion/schedulers/ddim.js';
import { alphasCumprod, SD_SCHEDULE } from '../../../src/diffusion/schedulers/schedule.js';
import { ddimInvertTensor, ddimSampleTensor } from '../../../src/diffusion/pipelines/sample.js';
import { EDITABLE_NAMES, isVisible, valuesOf } from '../attributes.js';
import { batchIndices, floatBatch, type ImageSet, loadImageSet } from '../cache.js';
import { DIFFAE_DEFAULT, diffaeEps, diffaeTargetWidth, semanticEncode, type DiffAeConfig } from '../models/diffae.js';
import { psnr, vaeDecode } from '../models/vae.js';
import { configOf } from '../models/configs.js';
import { loadParams, readCard } from '../zoo/store.js';
import { attributesOf, column, visibleAccuracy } from './clip.js';
import { encodeLatents, scaledLatents } from './vae.js';
import { readBatches, writeNoiseDraw, type TrainData, type TrainSettings, type ZooTrainSpec } from './common.js';

async function diffaeData(o: TrainSettings, pool: WorkerPool, log: (s: string) => void): Promise<TrainData> {
  const { set, latents } = await scaledLatents(o, pool, log);
  const cfg = DIFFAE_DEFAULT;
  const per = cfg.latentSize ** 2 * cfg.latentChannels;
  const width = diffaeTargetWidth(cfg);
  const alphas = alphasCumprod(SD_SCHEDULE);
  return {
    n: set.n,
    batch(idx, rng) {
      const y = new Float32Array(idx.length * width);
      idx.forEach((k, i) => {
        const row = i * width;
        y.set(latents.subarray(k * per, (k + 1) * per), row);
        writeNoiseDraw(y, row + per, per, rng, alphas);
      });
      return { x: floatBatch(set, idx), xShape: [idx.length, set.size, set.size, 3], y, yShape: [idx.length, width] };
    },
  };
}

function semanticCodes(p: Params, cfg: DiffAeConfig, set: ImageSet): tf.Tensor2D {
  const parts: tf.Tensor2D[] = [];
  for (const idx of batchIndices(set.n, 200)) {
    parts.push(
      tf.tidy(() => semanticEncode(p, tf.tensor4d(floatBatch(set, idx), [idx.length, set.size, set.size, 3]), cfg)),
    );
  }
  const all = tf.concat(parts);
  tf.dispose(parts);
  return all;
}

/** z_sem normalised by the stored train statistics (sem.mean, sem.std), as DiffAE's classifiers see it. */
function normalisedSemantic(p: Params, z: tf.Tensor2D): tf.Tensor2D {
  return tf.div(tf.sub(z, p.vars.get('sem.mean')!), p.vars.get('sem.std')!) as tf.Tensor2D;
}

/** Class logits of one editable attribute from normalised z_sem. */
function attributeLogits(p: Params, zn: tf.Tensor2D, name: string): tf.Tensor2D {
  return linear(p, `cls.${name}`, zn, valuesOf(name as never).length) as tf.Tensor2D;
}

/** Fits softmax-regression heads on normalised z_sem of train images (full batch, Adam, seeded init). */
async function fitClassifiers(p: Params, cfg: DiffAeConfig, set: ImageSet): Promise<void> {
  const z = semanticCodes(p, cfg, set);
  const { mean, variance } = tf.moments(z, 0);
  p.get('sem.mean', [cfg.semantic], { kind: 'zeros' }).assign(mean);
  p.get('sem.std', [cfg.semantic], { kind: 'ones' }).assign(tf.sqrt(tf.add(variance, 1e-8)));
  const zn = normalisedSemantic(p, z);
  for (const name of EDITABLE_NAMES) {
    const values = valuesOf(name);
    const keep = Array.from({ length: set.n }, (_, k) => k).filter((k) => isVisible(attributesOf(set, k), name));
    const labels = tf.oneHot(
      tf.tensor1d(
        keep.map((k) => values.indexOf(attributesOf(set, k)[name] as string)),
        'int32',
      ),
      values.length,
    );
    const x = tf.gather(zn, keep);
    tf.tidy(() => void attributeLogits(p, x, name));
    const vars = [p.vars.get(`cls.${name}.weight`)!, p.vars.get(`cls.${name}.bias`)!];
    const opt = tf.train.adam(0.05);
    for (let i = 0; i < 300; i++)
      opt.minimize(() => tf.losses.softmaxCrossEntropy(labels, attributeLogits(p, x, name)) as tf.Scalar, false, vars);
    opt.dispose();
    tf.dispose([labels, x]);
  }
  tf.dispose([z, mean, variance, zn]);
}

/**
 * Classifier accuracy on test z_sem, and autoencoding quality: z_sem plus the DDIM-inverted
 * stochastic code decoded back (DiffAE's reconstruction), PSNR after the VAE decoder.
 */
async function evalDiffae(
  p: Params,
  cfg: DiffAeConfig,
  set: ImageSet,
  steps: number,
): Promise<Record<string, unknown>> {
  const vae = loadParams('vae');
  const vcfg = configOf('vae', vae.card.architecture);
  const z = semanticCodes(p, cfg, set);
  const zn = normalisedSemantic(p, z);
  // Predicted value of every editable attribute, [n, E], and the reconstruction PSNR per image:
  // both stay on the device until one read at the end.
  const pred = tf.tidy(() =>
    tf.stack(
      EDITABLE_NAMES.map((name) => tf.argMax(attributeLogits(p, zn, name), 1)),
      1,
    ),
  );
  const scheduler = new DdimScheduler({ ...DDIM_SD, steps });
  // Scaled on the host in float32, as the stored latents are (bit-identical to the earlier host loop).
  const latents = (await encodeLatents(vae.params, vcfg, set)).map((v) => v * vcfg.scaleFactor!);
  const shape: [number, number, number, number] = [set.n, cfg.latentSize, cfg.latentSize, cfg.latentChannels];
  const eps = (zt: tf.Tensor4D, t: number) => diffaeEps(p, zt, tf.fill([set.n], t) as tf.Tensor1D, z, cfg);
  const xT = ddimInvertTensor(eps, scheduler, latents, shape);
  const back = ddimSampleTensor(eps, scheduler, xT, shape);
  xT.dispose();
  const q = tf.tidy(() =>
    psnr(
      vaeDecode(vae.params, tf.div(back, vcfg.scaleFactor!) as tf.Tensor4D, vcfg),
      tf.tensor4d(
        floatBatch(
          set,
          Array.from({ length: set.n }, (_, i) => i),
        ),
        [set.n, set.size, set.size, 3],
      ),
    ),
  );
  back.dispose();
  const [predicted, values] = await Promise.all([readBatches<Int32Array>([pred]), readBatches([q])]);
  tf.dispose([z, zn]);
  vae.params.dispose();
  const accuracy: Record<string, number> = {};
  EDITABLE_NAMES.forEach(
    (name, k) => (accuracy[name] = visibleAccuracy(set, name, column(predicted, EDITABLE_NAMES.length, k)).accuracy),
  );
  const r = (v: number) => Math.round(v * 1000) / 1000;
  return {
    eval: {
      split: 'test',
      n: set.n,
      classifiers: 'softmax regression on normalised z_sem, visible only',
      reconstruction: `DDIM ${steps}-step inversion + sampling, VAE-decoded`,
    },
    classifier_accuracy: accuracy,
    reconstruction_psnr_db: r(values.reduce((a, b) => a + b, 0) / values.length),
  };
}

export const DIFFAE_SPEC: ZooTrainSpec<'diffae'> = {
  name: 'diffae',
  model: 'diffae',
  config: DIFFAE_DEFAULT,
  role: 'DiffAE semantic encoder + conditional latent diffusion decoder, with linear attribute classifiers on z_sem',
  needs: ['vae'],
  version: 1,
  settings: { steps: 2000, batch: 32, lr: 1.5e-3, seed: 0, trainN: 24_000, evalN: 256, size: 32, checkpointEvery: 200 },
  data: (pool, o, log) => diffaeData(o, pool, log),
  async finalize(params, pool, o) {
    await fitClassifiers(params, DIFFAE_DEFAULT, await loadImageSet('train', Math.min(o.trainN, 4000), o.size, pool));
    return {
      vae: readCard('vae').weights.sha256,
      schedule: SD_SCHEDULE,
      prediction: 'epsilon',
      classifiers: 'cls.<attribute>: softmax regression on (z_sem − sem.mean)/sem.std',
    };
  },
  async evaluate(params, pool, o) {
    return await evalDiffae(params, DIFFAE_DEFAULT, await loadImageSet('test', o.evalN, o.size, pool), 50);
  },
};
