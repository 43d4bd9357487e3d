/**
 * Data-parallel training on the worker pool: each step splits the batch across workers, each
 * computes gradients of its share on its own wasm backend, and this thread averages them
 * (weighted by share) and applies the optimizer. wasm is single-threaded in Node; this is how a
 * training step uses every core.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WorkerPool } from '../backend/pool.js';
import type { HostAdam } from '../nn/adam.js';
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

/** One worker's share: gradients of the mean loss over its part of the batch. */
export function gradStep(input: GradStepInput, cache: Map<string, Params>): GradStepOutput {
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
  const loss = value.dataSync()[0];
  const t2 = performance.now();
  const out = [...p.vars].map(([name, v]) => ({ name, values: grads[v.name].dataSync() as Float32Array }));
  tf.dispose([xt, yt, value, grads]);
  return { loss, n: xShape[0], grads: out, ms: { assign: t1 - t0, compute: t2 - t1, read: performance.now() - t2 } };
}

export class DataParallelTrainer<N extends ModelName> {
  readonly params: Params;
  /** The last step's time split. */
  lastTiming: StepTiming | null = null;

  constructor(
    private readonly pool: WorkerPool,
    readonly model: N,
    readonly config: ModelConfig<N>,
    private readonly optimizer: HostAdam,
    seed: number,
    sample: Batch,
  ) {
    this.params = new Params(seed);
    // Build the parameters here from one sample so that this thread owns the master copy.
    const one = sliceBatch(sample, 0, Math.min(2, sample.xShape[0])); // two: contrastive losses need a pair
    tf.tidy(() => void modelLoss(model, this.params, tf.tensor4d(one.x, one.xShape), tf.tensor(one.y, one.yShape), config));
  }

  /** Share-weighted mean of the workers' gradients (keyed by tfjs variable name) and the loss. */
  async gradients(batch: Batch): Promise<{ loss: number; grads: Record<string, Float32Array> }> {
    const n = batch.xShape[0];
    const shares = Math.min(this.pool.size, n);
    const t0 = performance.now();
    const weights = [...this.params.vars].map(([name, v]) => ({ name, shape: v.shape, values: v.dataSync() as Float32Array }));
    const t1 = performance.now();
    const parts = Array.from({ length: shares }, (_, i) => {
      const lo = Math.floor((i * n) / shares);
      const hi = Math.floor(((i + 1) * n) / shares);
      return this.pool.run('gradStep', { model: this.model, config: this.config, seed: 0, weights, batch: sliceBatch(batch, lo, hi) });
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
    this.lastTiming = { gather: t1 - t0, workers: t2 - t1, reduce: performance.now() - t2, optimizer: 0, worker: slowest };
    return { loss, grads };
  }

  async step(batch: Batch): Promise<number> {
    const { loss, grads } = await this.gradients(batch);
    const t0 = performance.now();
    this.optimizer.apply(this.params.list(), grads);
    if (this.lastTiming) this.lastTiming.optimizer = performance.now() - t0;
    return loss;
  }
}

export function sliceBatch(b: Batch, lo: number, hi: number): Batch {
  const xPer = b.x.length / b.xShape[0];
  const yPer = b.y.length / b.yShape[0];
  return {
    x: b.x.slice(lo * xPer, hi * xPer),
    xShape: [hi - lo, b.xShape[1], b.xShape[2], b.xShape[3]],
    y: b.y.slice(lo * yPer, hi * yPer),
    yShape: [hi - lo, ...b.yShape.slice(1)],
  };
}
