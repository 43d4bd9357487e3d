/**
 * make bench-unet: one training step of the bench U-Net (src/nn/unet.ts; GroupNorm, SiLU, strided
 * convs, attention, upsampling skips; MSE + Adam), batch 8 at 32² and 64², timed as
 *   tfjs on this backend, one thread (HostAdam);  tfjs data-parallel on 2 pool workers;
 *   the same network in PyTorch CPU with 2 threads (bench/unet_torch.py; Debian's python3-torch).
 * Prints medians and the tfjs/PyTorch ratios; writes bench/results/unet_step.json.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, backendFromEnv } from '../src/backend/index.js';
import { WorkerPool } from '../src/backend/pool.js';
import { HostAdam } from '../src/nn/adam.js';
import { modelLoss } from '../src/nn/models.js';
import { Params } from '../src/nn/params.js';
import { DataParallelTrainer, TRAIN_TASKS, type Batch } from '../src/train/data_parallel.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { pythonWith } from '../src/util/python.js';
import { argValue, med, timeIt, UNET_BENCH_CFG, writeResult } from './common.js';

const sizes = argValue('sizes', '32,64').split(',').map(Number);
const steps = Number(argValue('steps', '8'));
const BATCH = 8;
const cfg = UNET_BENCH_CFG;

function makeBatch(size: number): Batch {
  return tf.tidy(() => ({
    x: tf.randomNormal([BATCH, size, size, 3], 0, 1, 'float32', 1).dataSync() as Float32Array,
    xShape: [BATCH, size, size, 3] as [number, number, number, number],
    y: tf.randomNormal([BATCH, size, size, 3], 0, 1, 'float32', 2).dataSync() as Float32Array,
    yShape: [BATCH, size, size, 3],
  }));
}

async function tfjsSingle(b: Batch): Promise<{ ms: number[]; params: number }> {
  const p = new Params(0);
  const x = tf.tensor4d(b.x, b.xShape);
  const y = tf.tensor(b.y, b.yShape);
  const opt = new HostAdam({ lr: 1e-4 });
  tf.tidy(() => void modelLoss('unet', p, x, y, cfg));
  const ms = await timeIt(async () => {
    const { value, grads } = tf.variableGrads(() => modelLoss('unet', p, x, y, cfg), p.list());
    await opt.apply(p.list(), grads);
    await value.data();
    tf.dispose([value, grads]);
  }, steps);
  const params = p.count();
  p.dispose();
  tf.dispose([x, y]);
  return { ms, params };
}

async function tfjsParallel(b: Batch, pool: WorkerPool): Promise<number[]> {
  const t = new DataParallelTrainer(pool, 'unet', cfg, new HostAdam({ lr: 1e-4 }), 0, b);
  const ms = await timeIt(() => t.step(b), steps);
  t.params.dispose();
  return ms;
}

/** Debian's python3-torch lives in /usr/bin/python3; install it when missing (root only). */
function torchPython(): string | null {
  const py = pythonWith(['torch']);
  if (py) return py;
  if (process.getuid?.() === 0) {
    console.log('installing python3-torch with apt-get (once)…');
    const r = spawnSync(
      'bash',
      ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch'],
      { stdio: 'inherit' },
    );
    if (r.status === 0 && spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0)
      return '/usr/bin/python3';
  }
  return null;
}

function torchTimes(py: string): Map<number, { ms: number[]; params: number; torch: string }> {
  const out = execFileSync(
    py,
    [
      join(PROJECT_ROOT, 'bench', 'unet_torch.py'),
      '--sizes',
      sizes.join(','),
      '--batch',
      String(BATCH),
      '--steps',
      String(steps),
      '--threads',
      '2',
    ],
    {
      encoding: 'utf-8',
    },
  );
  const m = new Map<number, { ms: number[]; params: number; torch: string }>();
  for (const line of out.trim().split('\n')) {
    const d = JSON.parse(line) as { size: number; ms: number[]; params: number; torch: string };
    m.set(d.size, d);
  }
  return m;
}

const info = await initBackend(backendFromEnv());
console.log(`backend ${info.choice}, batch ${BATCH}, ${steps} timed steps (medians)`);
const pool = new WorkerPool(2, info.choice, [TRAIN_TASKS]);
const rows: Array<Record<string, unknown>> = [];
const py = torchPython();
const torch = py ? torchTimes(py) : null;
if (!torch) console.log('PyTorch not available: skipping the reference (apt-get install python3-torch)');
for (const size of sizes) {
  const b = makeBatch(size);
  const single = await tfjsSingle(b);
  const parallel = await tfjsParallel(b, pool);
  const ref = torch?.get(size);
  if (ref && ref.params !== single.params)
    throw new Error(`parameter counts differ: tfjs ${single.params}, torch ${ref.params}`);
  const row = {
    size,
    params: single.params,
    tfjs_1_ms: med(single.ms),
    tfjs_2w_ms: med(parallel),
    torch_2t_ms: ref ? med(ref.ms) : null,
    ratio_1: ref ? med(single.ms) / med(ref.ms) : null,
    ratio_2w: ref ? med(parallel) / med(ref.ms) : null,
    pool_speedup: med(single.ms) / med(parallel),
  };
  rows.push(row);
  console.log(
    `${size}²: tfjs 1 thread ${row.tfjs_1_ms.toFixed(0)} ms, tfjs 2 workers ${row.tfjs_2w_ms.toFixed(0)} ms` +
      (ref
        ? `, PyTorch 2 threads ${row.torch_2t_ms!.toFixed(0)} ms → ratio ${row.ratio_1!.toFixed(2)}× / ${row.ratio_2w!.toFixed(2)}×`
        : ''),
  );
}
await pool.close();
console.log(
  `wrote ${writeResult('unet_step', { batch: BATCH, steps, config: cfg, torch: torch ? [...torch.values()][0]?.torch : null, rows })}`,
);
