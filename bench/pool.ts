/**
 * make bench-pool: data-parallel feature extraction (a strided conv stack + pooling, the shape of
 * an FID feature net) over 512 images of 32², in this thread vs on 1 and 2 pool workers.
 * Reports images/s and the 2-worker speed-up; writes bench/results/pool.json.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.js';
import { WorkerPool } from '../src/backend/pool.js';
import { convForward, type ConvForwardInput } from '../src/backend/worker_tasks.js';
import { argValue, med, timeIt, writeResult } from './common.js';
import { tfSeed } from '../src/util/rng.js';

const IMAGES = Number(argValue('images', '512'));
const CHUNK = 64;
const REPS = Number(argValue('reps', '5'));
await initBackend('wasm');

const shapes: Array<[number, number, number, number]> = [
  [3, 3, 3, 32],
  [3, 3, 32, 64],
  [3, 3, 64, 128],
  [3, 3, 128, 128],
];
const filters = tf.tidy(() =>
  shapes.map((s, i) => ({
    values: tf.randomNormal(s, 0, 0.2, 'float32', tfSeed(i)).dataSync() as Float32Array,
    shape: s,
  })),
);
const chunks: ConvForwardInput[] = [];
for (let i = 0; i < IMAGES; i += CHUNK) {
  const images = tf.tidy(
    () => tf.randomUniform([CHUNK, 32, 32, 3], 0, 1, 'float32', tfSeed(i)).dataSync() as Float32Array,
  );
  chunks.push({ images, shape: [CHUNK, 32, 32, 3], filters });
}

const main = await timeIt(
  async () => {
    for (const c of chunks) await convForward(c);
  },
  REPS,
  1,
);
const results: Record<string, number> = { main_thread_ms: med(main) };
for (const workers of [1, 2]) {
  const pool = new WorkerPool(workers, 'wasm');
  const ms = await timeIt(() => Promise.all(chunks.map((c) => pool.run('convForward', c))), REPS, 1);
  results[`workers_${workers}_ms`] = med(ms);
  await pool.close();
}
const speedup = results.workers_1_ms / results.workers_2_ms;
for (const [k, v] of Object.entries(results))
  console.log(`${k.padEnd(16)} ${v.toFixed(0).padStart(6)} ms  ${((IMAGES / v) * 1000).toFixed(0)} images/s`);
console.log(`2 workers vs 1: ×${speedup.toFixed(2)}`);
console.log(
  `wrote ${writeResult('pool', { images: IMAGES, chunk: CHUNK, reps: REPS, ...results, speedup_2_vs_1: speedup })}`,
);
