/**
 * The training loop every zoo classifier-style model shares: rendered train images (cached),
 * data-parallel steps on the pool, cosine-decayed Adam, resumable state under
 * .cache/zoo-train/<name>/, NaN stop, progress; then fp16 weights + card, whose numbers are
 * measured on the shipped weights exactly as `sdd zoo eval` recomputes them.
 */
import './register.js';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import type { WorkerPool } from '../../../src/backend/pool.js';
import { activeBackend } from '../../../src/backend/index.js';
import { createAdam, HostAdam, type AdamOptimizer } from '../../../src/nn/adam.js';
import type { Params } from '../../../src/nn/params.js';
import type { ModelConfig, ModelName } from '../../../src/nn/models.js';
import { DataParallelTrainer, type Batch } from '../../../src/train/data_parallel.js';
import { loadTrainState, saveTrainState, trainStateInfo } from '../../../src/train/checkpoint.js';
import { gitInfo, PROJECT_ROOT } from '../../../src/util/env.js';
import { Rng } from '../../../src/util/rng.js';
import type { ProgressReporter } from '../../../src/util/progress.js';
import { RENDER_VERSION } from '../render.js';
import { CACHE_DIR, floatBatch, loadImageSet, type ImageSet } from '../cache.js';
import { loadParams, saveModel, ZOO_DIR, type ModelCard } from '../zoo/store.js';

export interface TrainSettings {
  steps: number;
  batch: number;
  lr: number;
  seed: number;
  trainN: number;
  evalN: number;
  size: number;
  checkpointEvery: number;
}

export interface ZooTrainSpec<N extends ModelName> {
  name: string;
  model: N;
  config: ModelConfig<N>;
  role: string;
  version: number;
  /** Zoo models this one loads frozen (training data, losses, card evaluation): trained first. */
  needs: string[];
  settings: TrainSettings;
  /**
   * Targets for the given train images, row-major, and their per-item shape. `rng` is the step's
   * own generator (noise, random captions): a function of the step, so resuming replays it.
   */
  targets?(set: ImageSet, idx: number[], rng: Rng): { y: Float32Array; shape: number[] };
  /** Models that do not train on raw images (latent diffusion) supply their own data. */
  data?(pool: WorkerPool, settings: TrainSettings, log: (s: string) => void): Promise<TrainData>;
  /** Numbers fixed after training that inference needs (a VAE's scale factor): stored in the card's architecture. */
  finalize?(params: Params, pool: WorkerPool, settings: TrainSettings): Promise<Record<string, unknown>>;
  /** The card's numbers, from loaded weights. */
  evaluate(params: Params, pool: WorkerPool, settings: TrainSettings): Promise<Record<string, unknown>>;
}

/**
 * A training set: `n` items and a batch of them (with the step's generator for noise). Async
 * where making a batch runs a frozen model (a text encoder) whose output is read back.
 */
export interface TrainData {
  n: number;
  batch(idx: number[], rng: Rng): Batch | Promise<Batch>;
}

/** Raw images as x, the spec's targets as y. */
export async function imageData<N extends ModelName>(
  spec: ZooTrainSpec<N>,
  pool: WorkerPool,
  o: TrainSettings,
  log: (s: string) => void,
): Promise<TrainData> {
  log(`${spec.name}: rendering ${o.trainN} train images (${o.size}²; cached after the first time)`);
  const train = await loadImageSet('train', o.trainN, o.size, pool);
  if (!spec.targets) throw new Error(`${spec.name}: a spec needs targets() or data()`);
  const targets = spec.targets;
  return {
    n: train.n,
    batch(idx, rng) {
      const t = targets(train, idx, rng);
      return {
        x: floatBatch(train, idx),
        xShape: [idx.length, o.size, o.size, 3],
        y: t.y,
        yShape: [idx.length, ...t.shape],
      };
    },
  };
}

/** Step `step`'s batch: a function of the seed and the step only, so a resumed training replays it. */
export async function stepBatch(train: TrainData, o: TrainSettings, step: number): Promise<Batch> {
  const rng = new Rng(o.seed * 1_000_003 + step);
  const idx = Array.from({ length: o.batch }, () => rng.int(train.n));
  return train.batch(idx, rng);
}

/**
 * Per-batch results of an evaluation loop, joined along axis 0 and read back with one awaited
 * read (the parts are disposed): the loop itself never waits for the device.
 */
export async function readBatches<T extends Float32Array | Int32Array = Float32Array>(parts: tf.Tensor[]): Promise<T> {
  if (parts.length === 0) return new Float32Array(0) as T;
  const all = parts.length === 1 ? parts[0] : tf.concat(parts);
  if (parts.length > 1) tf.dispose(parts);
  try {
    return (await all.data()) as T;
  } finally {
    all.dispose();
  }
}

export async function trainZooModel<N extends ModelName>(
  spec: ZooTrainSpec<N>,
  pool: WorkerPool,
  progress: ProgressReporter,
  log: (s: string) => void,
  until?: number,
): Promise<ModelCard | null> {
  const o = spec.settings;
  const t0 = Date.now();
  const ckptDir = join(CACHE_DIR, '..', 'zoo-train', spec.name);
  const train = spec.data ? await spec.data(pool, o, log) : await imageData(spec, pool, o, log);
  const batchOf = (step: number): Promise<Batch> => stepBatch(train, o, step);
  const opt: AdamOptimizer = createAdam({ lr: o.lr });
  const trainer = new DataParallelTrainer(pool, spec.model, spec.config, opt, o.seed, await batchOf(0));
  const start = loadTrainState(ckptDir, trainer.params, opt);
  if (start > 0) log(`${spec.name}: resuming at step ${start}`);
  const timing = resumedTiming(start, trainStateInfo(ckptDir));
  const wallSoFar = () => timing.wall_s + (Date.now() - t0) / 1000;
  const checkpoint = (step: number) =>
    saveTrainState(ckptDir, step, trainer.params, opt, {
      wall_s: wallSoFar(),
      wall_s_from_step: timing.fromStep,
      resumed_at_steps: timing.resumedAt,
    });
  progress.start(spec.name, spec.name);
  let ema = NaN;
  // Never below the checkpoint: --until at or before it re-saves the same state.
  const end = Math.min(o.steps, Math.max(until ?? o.steps, start));
  for (let step = start; step < end; step++) {
    // Cosine decay to 5% of the peak: a stable finish without a tuned schedule.
    opt.lr = o.lr * (0.05 + 0.95 * 0.5 * (1 + Math.cos((Math.PI * step) / o.steps)));
    const loss = await trainer.step(await batchOf(step));
    if (!Number.isFinite(loss))
      throw new Error(`${spec.name}: loss is ${loss} at step ${step}; stopping (last checkpoint kept in ${ckptDir})`);
    ema = Number.isNaN(ema) ? loss : 0.98 * ema + 0.02 * loss;
    progress.update(spec.name, step + 1, o.steps, `loss ${ema.toFixed(3)}`);
    if ((step + 1) % o.checkpointEvery === 0 && step + 1 < o.steps) await checkpoint(step + 1);
  }
  if (end < o.steps) {
    await checkpoint(end);
    opt.dispose();
    progress.finish(
      spec.name,
      `${spec.name} stopped at step ${end}/${o.steps}; checkpoint in ${ckptDir} (run again without --until to resume)`,
    );
    return null;
  }
  progress.finish(spec.name, `${spec.name} trained (${o.steps} steps)`);
  const fixed = spec.finalize ? await spec.finalize(trainer.params, pool, o) : {};
  const optimizer = opt instanceof HostAdam ? 'Adam (host)' : 'Adam (device)';
  const base = cardBase(spec, fixed, { optimizer, wall_s: wallSoFar(), timing, workers: pool.size });
  const card = await shipModel(spec, trainer.params, base, pool);
  opt.dispose();
  rmSync(ckptDir, { recursive: true, force: true });
  return card;
}

type CardBase = Omit<ModelCard, 'weights' | 'name'>;
type Timing = ReturnType<typeof resumedTiming>;

/** The card before its metrics: the architecture, how the model was trained, and provenance. */
function cardBase<N extends ModelName>(
  spec: ZooTrainSpec<N>,
  fixed: Record<string, unknown>,
  run: { optimizer: string; wall_s: number; timing: Timing; workers: number },
): CardBase {
  const o = spec.settings;
  const { timing } = run;
  return {
    role: spec.role,
    version: spec.version,
    architecture: { ...(spec.config as object), input: `${o.size}x${o.size}x3 in [0,1]`, ...fixed },
    training: {
      script: `datasets/toyfaces/train/${spec.name}.ts`,
      ...o,
      schedule: 'cosine to 5%',
      optimizer: run.optimizer,
      data: { split: 'train', n: o.trainN, size: o.size, render_version: RENDER_VERSION },
      // Summed over every process that trained it (a resumed training is not a cheaper one).
      wall_s: Math.round(run.wall_s),
      ...(timing.resumedAt.length > 0 ? { resumed_at_steps: timing.resumedAt } : {}),
      ...(timing.fromStep > 0 ? { wall_s_from_step: timing.fromStep } : {}),
      backend: activeBackend()?.choice ?? null,
      workers: run.workers,
    },
    metrics: {},
    created_at: new Date().toISOString(),
    git: gitInfo(PROJECT_ROOT, [ZOO_DIR]),
  };
}

/**
 * Saves the weights, then measures the card's numbers on the shipped (fp16) weights as read back,
 * exactly as `sdd zoo eval` recomputes them, and saves again with them.
 */
async function shipModel<N extends ModelName>(
  spec: ZooTrainSpec<N>,
  params: Params,
  base: CardBase,
  pool: WorkerPool,
): Promise<ModelCard> {
  await saveModel(spec.name, params, base);
  const shipped = loadParams(spec.name);
  const metrics = await spec.evaluate(shipped.params, pool, spec.settings);
  shipped.params.dispose();
  return saveModel(spec.name, params, { ...base, metrics });
}

/**
 * Wall time a resumed training already spent, from its checkpoint. A checkpoint written before
 * the time was kept in it leaves the earlier steps untimed: `fromStep` says where timing starts.
 */
function resumedTiming(
  start: number,
  info: Record<string, unknown> | null,
): { wall_s: number; fromStep: number; resumedAt: number[] } {
  if (start === 0 || !info) return { wall_s: 0, fromStep: 0, resumedAt: [] };
  const earlier = Array.isArray(info.resumed_at_steps)
    ? info.resumed_at_steps.filter((v): v is number => typeof v === 'number')
    : [];
  if (typeof info.wall_s !== 'number') return { wall_s: 0, fromStep: start, resumedAt: [...earlier, start] };
  const fromStep = typeof info.wall_s_from_step === 'number' ? info.wall_s_from_step : 0;
  return { wall_s: info.wall_s, fromStep, resumedAt: [...earlier, start] };
}

/**
 * Writes one ε-prediction training draw at y[at…]: `n` standard normals (ε), then t uniform over
 * the schedule, √ᾱ_t and √(1 − ᾱ_t) — the layout the diffusion losses unpack.
 */
export function writeNoiseDraw(y: Float32Array, at: number, n: number, rng: Rng, alphas: Float64Array): void {
  for (let j = 0; j < n; j++) y[at + j] = rng.normal();
  const t = rng.int(alphas.length);
  y[at + n] = t;
  y[at + n + 1] = Math.sqrt(alphas[t]);
  y[at + n + 2] = Math.sqrt(1 - alphas[t]);
}
