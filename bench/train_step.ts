/**
 * make bench-train: where a zoo model's data-parallel training step spends its time, per model, at
 * the model's card settings (batch, config; a 2048-image slice of its training data):
 *   gather (host: weights out of the master copy), workers (wall time of the parallel part),
 *   reduce (host: share-weighted gradient mean), optimizer (host: Adam), and inside the slowest
 *   worker: assign (weights in), compute (forward + backward), read (gradients out).
 * Host parts run while both cores idle, so they bound what a faster kernel can buy. Medians over
 * --steps timed steps after 2 warm-up steps; writes bench/results/train_step.json.
 */
import { initBackend, backendFromEnv } from '../src/backend/index.js';
import { WorkerPool } from '../src/backend/pool.js';
import { HostAdam } from '../src/nn/adam.js';
import type { ModelName } from '../src/nn/models.js';
import { DataParallelTrainer, TRAIN_TASKS, type StepTiming } from '../src/train/data_parallel.js';
import { TOYFACES_TASKS } from '../datasets/toyfaces/cache.js';
import { imageData, stepBatch, type ZooTrainSpec } from '../datasets/toyfaces/train/common.js';
import { ZOO_SPECS } from '../datasets/toyfaces/zoo/index.js';
import { argValue, med, writeResult } from './common.js';

const SPECS: Record<string, ZooTrainSpec<ModelName>> = ZOO_SPECS;

const names = argValue('models', Object.keys(SPECS).join(',')).split(',');
const steps = Number(argValue('steps', '8'));
const trainN = 2048;

async function benchModel(spec: ZooTrainSpec<ModelName>, pool: WorkerPool): Promise<Record<string, unknown>> {
  const o = { ...spec.settings, trainN };
  const log = (s: string) => console.log(`  ${s}`);
  const data = spec.data ? await spec.data(pool, o, log) : await imageData(spec, pool, o, log);
  const batchOf = (step: number) => stepBatch(data, o, step);
  const trainer = new DataParallelTrainer(
    pool,
    spec.model,
    spec.config,
    new HostAdam({ lr: o.lr }),
    o.seed,
    await batchOf(0),
  );
  const total: number[] = [];
  const parts: StepTiming[] = [];
  for (let s = 0; s < steps + 2; s++) {
    const b = await batchOf(s);
    const t0 = performance.now();
    await trainer.step(b);
    if (s < 2) continue; // warm-up: worker models are built on their first share
    total.push(performance.now() - t0);
    parts.push(trainer.lastTiming!);
  }
  const params = trainer.params.count();
  trainer.params.dispose();
  const m = (f: (t: StepTiming) => number) => med(parts.map(f));
  const step = med(total);
  const host = m((t) => t.gather + t.reduce + t.optimizer);
  const row = {
    model: spec.name,
    params,
    batch: o.batch,
    step_ms: step,
    host_ms: host,
    gather_ms: m((t) => t.gather),
    workers_ms: m((t) => t.workers),
    reduce_ms: m((t) => t.reduce),
    optimizer_ms: m((t) => t.optimizer),
    worker_assign_ms: m((t) => t.worker.assign),
    worker_compute_ms: m((t) => t.worker.compute),
    worker_read_ms: m((t) => t.worker.read),
    // Wall time of the parallel part not spent computing: (de)serialisation and messaging.
    transfer_ms: m((t) => t.workers - t.worker.assign - t.worker.compute - t.worker.read),
    compute_share: m((t) => t.worker.compute) / step,
  };
  console.log(
    `${spec.name} (${(params / 1e6).toFixed(2)}M params, batch ${o.batch}): step ${step.toFixed(0)} ms = compute ${row.worker_compute_ms.toFixed(0)} ` +
      `+ assign ${row.worker_assign_ms.toFixed(0)} + read ${row.worker_read_ms.toFixed(0)} + transfer ${row.transfer_ms.toFixed(0)} ` +
      `+ host ${host.toFixed(0)} (gather ${row.gather_ms.toFixed(0)}, reduce ${row.reduce_ms.toFixed(0)}, adam ${row.optimizer_ms.toFixed(0)}); compute ${(100 * row.compute_share).toFixed(0)}%`,
  );
  return row;
}

const info = await initBackend(backendFromEnv());
console.log(`backend ${info.choice}, ${steps} timed steps per model (medians)`);
const pool = new WorkerPool(2, info.choice, [TRAIN_TASKS, TOYFACES_TASKS]);
const rows: Array<Record<string, unknown>> = [];
try {
  for (const name of names) {
    const spec = SPECS[name];
    if (!spec) throw new Error(`bench-train: unknown model '${name}' (known: ${Object.keys(SPECS).join(', ')})`);
    rows.push(await benchModel(spec, pool));
  }
} finally {
  await pool.close();
}
console.log(`wrote ${writeResult('train_step', { steps, train_images: trainN, rows })}`);
