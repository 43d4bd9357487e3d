/**
 * Data-parallel training on the worker pool: each step splits the batch across workers, each
 * computes gradients of its share on its own wasm backend, and this thread averages them
 * (weighted by share) and applies the optimizer. wasm is single-threaded in Node; this is how a
 * training step uses every core.
 *
 * The workers' side is the 'gradStep' task, registered here: a pool that runs a
 * DataParallelTrainer must list this module (TRAIN_TASKS) in its taskModules.
 */
import * as tf from '@tensorflow/tfjs-core';
import { activeBackend } from '../backend/index.js';
import type { WorkerPool } from '../backend/pool.js';
import { registerWorkerTask } from '../backend/task_registry.js';
import type { AdamOptimizer } from '../nn/adam.js';
import { modelLoss, type ModelConfig, type ModelName } from '../nn/models.js';
import { Params } from '../nn/params.js';

export interface Batch {
  x: Float32Array;
  xShape: [number, number, number, number];
  y: Float32Array;
  yShape: number[];
}

export interface GradStepInput {
  model: ModelName;
  config: unknown;
  seed: number;
  weights: Array<{ name: string; shape: number[]; values: Float32Array }>;
  batch: Batch;
}

export interface GradStepOutput {
  loss: number;
  n: number;
  grads: Array<{ name: string; values: Float32Array }>;
  /** Where the worker's time went (ms): loading the weights, forward + backward, reading the gradients out. */
  ms: { assign: number; compute: number; read: number };
}

/** One step's time split (ms), for the training-step benchmark: the host's parts are serial, the workers' parallel. */
export interface StepTiming {
  gather: number;
  workers: number;
  reduce: number;
  optimizer: number;
  /** The slowest worker's own split. */
  worker: GradStepOutput['ms'];
}

declare module '../backend/task_registry.js' {
  interface WorkerTasks {
    /** Gradients of a registered model's loss on one share of a batch (data-parallel training). */
    gradStep: { input: GradStepInput; output: GradStepOutput };
  }
}

/** One worker's share: gradients of the mean loss over its part of the batch. */
async function gradStep(input: GradStepInput, cache: Map<string, Params>): Promise<GradStepOutput> {
  const key = `${input.model}:${JSON.stringify(input.config)}`;
  let p = cache.get(key);
  if (!p) cache.set(key, (p = new Params(input.seed)));
  const { x, xShape, y, yShape } = input.batch;
  const xt = tf.tensor4d(x, xShape);
  const yt = tf.tensor(y, yShape);
  if (p.vars.size === 0) tf.tidy(() => void modelLoss(input.model, p!, xt, yt, input.config as never));
  const t0 = performance.now();
  for (const w of input.weights) {
    const v = p.vars.get(w.name);
    if (!v) throw new Error(`worker model has no parameter ${w.name}`);
    const t = tf.tensor(w.values, w.shape);
    v.assign(t);
    t.dispose();
  }
  const vars = p.list();
  const t1 = performance.now();
  const { value, grads } = tf.variableGrads(() => modelLoss(input.model, p!, xt, yt, input.config as never), vars);
  const loss = (await value.data())[0];
  const t2 = performance.now();
  const out = await Promise.all(
    [...p.vars].map(async ([name, v]) => ({ name, values: (await grads[v.name].data()) as Float32Array })),
  );
  tf.dispose([xt, yt, value, grads]);
  return { loss, n: xShape[0], grads: out, ms: { assign: t1 - t0, compute: t2 - t1, read: performance.now() - t2 } };
}

/** Per-worker model parameters, reused across steps (weights are overwritten each step). */
const workerModels = new Map<string, Params>();
registerWorkerTask('gradStep', (input) => gradStep(input, workerModels));

/** This module's URL: the task module a pool needs to run 'gradStep' (WorkerPool's taskModules). */
export const TRAIN_TASKS: string = import.meta.url;

export class DataParallelTrainer<N extends ModelName> {
  readonly params: Params;
  /** The last step's time split. */
  lastTiming: StepTiming | null = null;

  constructor(
    private readonly pool: WorkerPool,
    readonly model: N,
    readonly config: ModelConfig<N>,
    private readonly optimizer: AdamOptimizer,
    seed: number,
    sample: Batch,
  ) {
    this.params = new Params(seed);
    // Build the parameters here from one sample so that this thread owns the master copy.
    const one = sliceBatch(sample, 0, Math.min(2, sample.xShape[0])); // two: contrastive losses need a pair
    tf.tidy(
      () => void modelLoss(model, this.params, tf.tensor4d(one.x, one.xShape), tf.tensor(one.y, one.yShape), config),
    );
  }

  /** Share-weighted mean of the workers' gradients (keyed by tfjs variable name) and the loss. */
  async gradients(batch: Batch): Promise<{ loss: number; grads: Record<string, Float32Array> }> {
    const n = batch.xShape[0];
    const shares = Math.min(this.pool.size, n);
    const t0 = performance.now();
    const weights = await Promise.all(
      [...this.params.vars].map(async ([name, v]) => ({
        name,
        shape: v.shape,
        values: (await v.data()) as Float32Array,
      })),
    );
    const t1 = performance.now();
    const parts = Array.from({ length: shares }, (_, i) => {
      const lo = Math.floor((i * n) / shares);
      const hi = Math.floor(((i + 1) * n) / shares);
      return this.pool.run('gradStep', {
        model: this.model,
        config: this.config,
        seed: 0,
        weights,
        batch: sliceBatch(batch, lo, hi),
      });
    });
    const results = await Promise.all(parts);
    const t2 = performance.now();
    const grads: Record<string, Float32Array> = {};
    let loss = 0;
    for (const r of results) {
      const share = r.n / n;
      loss += r.loss * share;
      for (const g of r.grads) {
        const key = this.params.vars.get(g.name)!.name; // optimizer state is keyed by tfjs name
        const acc = (grads[key] ??= new Float32Array(g.values.length));
        for (let i = 0; i < acc.length; i++) acc[i] += g.values[i] * share;
      }
    }
    const slowest = results.reduce((a, b) => (b.ms.compute > a.ms.compute ? b : a)).ms;
    this.lastTiming = {
      gather: t1 - t0,
      workers: t2 - t1,
      reduce: performance.now() - t2,
      optimizer: 0,
      worker: slowest,
    };
    return { loss, grads };
  }

  /**
   * One optimizer step. On a GPU backend the whole step stays on the device in this process
   * (gradients and the optimizer, no weights crossing to workers); data parallelism over worker
   * threads is for the CPU backends.
   */
  async step(batch: Batch): Promise<number> {
    if (activeBackend()?.gpu) return this.deviceStep(batch);
    const { loss, grads } = await this.gradients(batch);
    const t0 = performance.now();
    await this.optimizer.apply(this.params.list(), grads);
    if (this.lastTiming) this.lastTiming.optimizer = performance.now() - t0;
    return loss;
  }

  private async deviceStep(batch: Batch): Promise<number> {
    const t0 = performance.now();
    const vars = this.params.list();
    const { value, grads } = tf.tidy(() => {
      const x = tf.tensor4d(batch.x, batch.xShape);
      const y = tf.tensor(batch.y, batch.yShape);
      return tf.variableGrads(() => modelLoss(this.model, this.params, x, y, this.config as never), vars);
    });
    const t1 = performance.now();
    await this.optimizer.apply(vars, grads);
    const loss = (await value.data())[0];
    tf.dispose([value, grads]);
    this.lastTiming = {
      gather: 0,
      workers: t1 - t0,
      reduce: 0,
      optimizer: performance.now() - t1,
      worker: { assign: 0, compute: t1 - t0, read: 0 },
    };
    return loss;
  }
}

function sliceBatch(b: Batch, lo: number, hi: number): Batch {
  const xPer = b.x.length / b.xShape[0];
  const yPer = b.y.length / b.yShape[0];
  return {
    x: b.x.slice(lo * xPer, hi * xPer),
    xShape: [hi - lo, b.xShape[1], b.xShape[2], b.xShape[3]],
    y: b.y.slice(lo * yPer, hi * yPer),
    yShape: [hi - lo, ...b.yShape.slice(1)],
  };
}
