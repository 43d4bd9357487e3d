/**
 * Data-parallel training across two pool workers equals single-thread full-batch training:
 * the share-weighted mean of per-share gradients is the full-batch gradient of a mean loss.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend/index.js';
import { WorkerPool } from '../backend/pool.js';
import { HostAdam } from '../nn/adam.js';
import { modelLoss } from '../nn/models.js';
import { Params } from '../nn/params.js';
import { DataParallelTrainer, TRAIN_TASKS, type Batch } from './data_parallel.js';

await initBackend('wasm');

const cfg = { channels: [8, 16], groups: 4, outChannels: 3 };

async function batch(seed: number): Promise<Batch> {
  const x = tf.randomNormal([5, 8, 8, 3], 0, 1, 'float32', seed);
  const y = tf.randomNormal([5, 8, 8, 3], 0, 1, 'float32', seed + 1);
  try {
    return {
      x: (await x.data()) as Float32Array,
      xShape: [5, 8, 8, 3],
      y: (await y.data()) as Float32Array,
      yShape: [5, 8, 8, 3],
    };
  } finally {
    tf.dispose([x, y]);
  }
}

test('two-worker data-parallel steps match single-thread full-batch steps', async () => {
  const pool = new WorkerPool(2, 'wasm', [TRAIN_TASKS]);
  try {
    const b0 = await batch(1);
    const dp = new DataParallelTrainer(pool, 'unet', cfg, new HostAdam({ lr: 1e-2 }), 7, b0);
    const ref = new Params(7);
    const refOpt = new HostAdam({ lr: 1e-2 });
    const loss = (b: Batch) => modelLoss('unet', ref, tf.tensor4d(b.x, b.xShape), tf.tensor(b.y, b.yShape), cfg);
    tf.tidy(() => void loss(b0));
    for (const [name, v] of dp.params.vars)
      assert.deepEqual([...(await v.data())], [...(await ref.vars.get(name)!.data())], `init ${name}`);
    for (let s = 0; s < 3; s++) {
      const b = await batch(10 + s);
      const mine = await dp.gradients(b);
      const { value, grads } = tf.variableGrads(() => loss(b), ref.list());
      const l2 = (await value.data())[0];
      assert.ok(Math.abs(mine.loss - l2) < 1e-5 * Math.max(1, Math.abs(l2)), `step ${s}: loss ${mine.loss} vs ${l2}`);
      // Some gradients are zero in exact arithmetic (a key bias under softmax): their float32
      // values are noise, so errors also get a floor of 1e-6 × the largest gradient anywhere.
      let global = 0;
      for (const [name] of dp.params.vars)
        for (const v of await grads[ref.vars.get(name)!.name].data()) global = Math.max(global, Math.abs(v));
      for (const [name, v] of dp.params.vars) {
        const g = mine.grads[v.name];
        const r = await grads[ref.vars.get(name)!.name].data();
        let scale = 0;
        let err = 0;
        for (let i = 0; i < g.length; i++) {
          scale = Math.max(scale, Math.abs(r[i]));
          err = Math.max(err, Math.abs(g[i] - r[i]));
        }
        // float32 sums in another order: relative to the tensor's largest gradient.
        assert.ok(
          err <= 1e-4 * scale + 1e-6 * global,
          `step ${s} ${name}: gradient error ${err} (scale ${scale}, global ${global})`,
        );
      }
      // Same update on both sides keeps the weights in step for the next comparison.
      await refOpt.apply(ref.list(), grads);
      dp.params.list().forEach((v) => v.assign(ref.vars.get(v.name.split('/').slice(1).join('/'))!));
      tf.dispose([value, grads]);
    }
  } finally {
    await pool.close();
  }
});
