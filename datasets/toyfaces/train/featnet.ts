/**
 * Trains the FID feature net on rendered train images (data-parallel on the pool), evaluates
 * per-attribute accuracy on the test split, and ships fp16 weights + card to the zoo.
 * Resumable: state every `checkpointEvery` steps under .cache/zoo-train/featnet/.
 */
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import type { WorkerPool } from '../../../src/backend/pool.js';
import { activeBackend } from '../../../src/backend/index.js';
import { HostAdam } from '../../../src/nn/adam.js';
import type { Params } from '../../../src/nn/params.js';
import { DataParallelTrainer } from '../../../src/train/data_parallel.js';
import { loadTrainState, saveTrainState } from '../../../src/train/checkpoint.js';
import { gitInfo } from '../../../src/runs/env.js';
import { Rng } from '../../../src/util/rng.js';
import type { ProgressReporter } from '../../../src/exec/progress.js';
import { ATTRIBUTE_NAMES } from '../attributes.js';
import { RENDER_VERSION } from '../render.js';
import { CACHE_DIR, floatBatch, labelBatch, loadImageSet, type ImageSet } from '../cache.js';
import { FEATNET_DEFAULT, featnetFeatures, featnetLogits, type FeatNetConfig } from '../models/featnet.js';
import { loadParams, saveModel, type ModelCard } from '../zoo/store.js';

export interface FeatnetTrainOptions {
  steps: number;
  batch: number;
  lr: number;
  seed: number;
  trainN: number;
  evalN: number;
  size: number;
  checkpointEvery: number;
  config: FeatNetConfig;
}

export const FEATNET_TRAIN: FeatnetTrainOptions = {
  steps: 3000,
  batch: 64,
  lr: 2e-3,
  seed: 0,
  trainN: 24_000,
  evalN: 2_000,
  size: 32,
  checkpointEvery: 200,
  config: FEATNET_DEFAULT,
};

/** Per-attribute accuracy of the heads on the first `n` test images. */
export async function evalFeatnet(params: Params, cfg: FeatNetConfig, set: ImageSet): Promise<Record<string, number>> {
  const correct = new Array(ATTRIBUTE_NAMES.length).fill(0);
  const chunk = 200;
  for (let i = 0; i < set.n; i += chunk) {
    const idx = Array.from({ length: Math.min(chunk, set.n - i) }, (_, k) => i + k);
    const preds = tf.tidy(() => {
      const x = tf.tensor4d(floatBatch(set, idx), [idx.length, set.size, set.size, 3]);
      return featnetLogits(params, featnetFeatures(params, x, cfg)).map((l) => tf.argMax(l, 1));
    });
    const labels = labelBatch(set, idx);
    preds.forEach((p, a) => {
      const d = p.dataSync();
      for (let k = 0; k < idx.length; k++) if (d[k] === labels[k * ATTRIBUTE_NAMES.length + a]) correct[a]++;
    });
    tf.dispose(preds);
  }
  return Object.fromEntries(ATTRIBUTE_NAMES.map((name, a) => [name, correct[a] / set.n]));
}

export async function trainFeatnet(pool: WorkerPool, o: FeatnetTrainOptions, progress: ProgressReporter, log: (s: string) => void): Promise<ModelCard> {
  const t0 = Date.now();
  const ckptDir = join(CACHE_DIR, '..', 'zoo-train', 'featnet');
  log(`featnet: rendering ${o.trainN} train + ${o.evalN} test images (${o.size}²; cached after the first time)`);
  const train = await loadImageSet('train', o.trainN, o.size, pool);
  const test = await loadImageSet('test', o.evalN, o.size, pool);
  const batchOf = (step: number) => {
    const rng = new Rng(o.seed * 1_000_003 + step); // a function of the step: resume-safe
    const idx = Array.from({ length: o.batch }, () => rng.int(train.n));
    return { x: floatBatch(train, idx), xShape: [o.batch, o.size, o.size, 3] as [number, number, number, number], y: labelBatch(train, idx), yShape: [o.batch, ATTRIBUTE_NAMES.length] };
  };
  const opt = new HostAdam({ lr: o.lr });
  const trainer = new DataParallelTrainer(pool, 'featnet', o.config, opt, o.seed, batchOf(0));
  const start = loadTrainState(ckptDir, trainer.params, opt);
  if (start > 0) log(`featnet: resuming at step ${start}`);
  progress.start('featnet', 'featnet');
  let ema = NaN;
  for (let step = start; step < o.steps; step++) {
    // Cosine decay to 5% of the peak: a stable finish without a tuned schedule.
    opt.lr = o.lr * (0.05 + 0.95 * 0.5 * (1 + Math.cos((Math.PI * step) / o.steps)));
    const loss = await trainer.step(batchOf(step));
    if (!Number.isFinite(loss)) throw new Error(`featnet: loss is ${loss} at step ${step}`);
    ema = Number.isNaN(ema) ? loss : 0.98 * ema + 0.02 * loss;
    progress.update('featnet', step + 1, o.steps, `loss ${ema.toFixed(3)}`);
    if ((step + 1) % o.checkpointEvery === 0 && step + 1 < o.steps) saveTrainState(ckptDir, step + 1, trainer.params, opt);
  }
  progress.finish('featnet', `featnet trained (${o.steps} steps)`);
  const wall = (Date.now() - t0) / 1000;
  const card = saveModel('featnet', trainer.params, {
    role: 'FID/KID feature extractor (penultimate, 128-d) and attribute classifier (the Inception role)',
    version: 1,
    architecture: { ...o.config, input: `${o.size}x${o.size}x3 in [0,1]`, heads: ATTRIBUTE_NAMES },
    training: {
      script: 'datasets/toyfaces/train/featnet.ts',
      steps: o.steps,
      batch: o.batch,
      lr: o.lr,
      schedule: 'cosine to 5%',
      optimizer: 'Adam (host)',
      seed: o.seed,
      data: { split: 'train', n: o.trainN, size: o.size, render_version: RENDER_VERSION },
      wall_s: Math.round(wall),
      backend: activeBackend()?.choice ?? null,
      workers: pool.size,
    },
    metrics: {},
    created_at: new Date().toISOString(),
    git: gitInfo(),
  });
  // The card's numbers come from the shipped (fp16) weights, exactly as `sdd zoo eval` computes them.
  const shipped = loadParams('featnet');
  const acc = await evalFeatnet(shipped.params, o.config, test);
  shipped.params.dispose();
  const final = saveModel('featnet', trainer.params, { ...card, metrics: { eval: { split: 'test', n: o.evalN }, accuracy: acc } });
  rmSync(ckptDir, { recursive: true, force: true });
  return final;
}
