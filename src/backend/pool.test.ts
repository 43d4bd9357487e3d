/** The worker pool: each worker owns a wasm backend and computes the same numbers as this thread. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './index.js';
import { WorkerPool } from './pool.js';
import { convForward, type ConvForwardInput } from './worker_tasks.js';

await initBackend('wasm');

function input(seed: number, n: number): ConvForwardInput {
  const shapes: Array<[number, number, number, number]> = [[3, 3, 3, 8], [3, 3, 8, 16]];
  return tf.tidy(() => ({
    images: tf.randomUniform([n, 16, 16, 3], 0, 1, 'float32', seed).dataSync() as Float32Array,
    shape: [n, 16, 16, 3],
    filters: shapes.map((s, i) => ({ values: tf.randomNormal(s, 0, 0.3, 'float32', seed + i + 1).dataSync() as Float32Array, shape: s })),
  }));
}

test('two workers, each on wasm, match the main thread exactly', async () => {
  const pool = new WorkerPool(2, 'wasm');
  try {
    const infos = await Promise.all(Array.from({ length: 4 }, () => pool.run('backendInfo', {})));
    for (const i of infos) assert.equal(i.backend, 'wasm');
    const inputs = [input(1, 6), input(2, 5), input(3, 7)];
    const remote = await Promise.all(inputs.map((x) => pool.run('convForward', x)));
    for (const [k, x] of inputs.entries()) {
      const local = convForward(x);
      assert.deepEqual(remote[k].shape, local.shape);
      // Same wasm build, same inputs, same op order: bitwise equal.
      assert.deepEqual([...remote[k].features], [...local.features]);
    }
  } finally {
    await pool.close();
  }
});

test('a failing task rejects with its message and the pool keeps working', async () => {
  const pool = new WorkerPool(1, 'wasm');
  try {
    const bad = { ...input(4, 2), shape: [2, 16, 16, 4] as [number, number, number, number] };
    await assert.rejects(pool.run('convForward', bad), /shape|values/i);
    const ok = await pool.run('convForward', input(5, 2));
    assert.deepEqual(ok.shape, [2, 16]);
  } finally {
    await pool.close();
  }
});
