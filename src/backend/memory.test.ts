/**
 * deviceMemory() on the CPU backends (webgpu's is in test/webgpu_memory.test.ts): live tensors and
 * their bytes exactly, the peak at least what was alive at once, and the shape the run files record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { deviceMemory, initBackend, resetPeakMemory } from './index.js';

for (const backend of ['cpu', 'wasm'] as const) {
  test(`deviceMemory on ${backend}: tensors, bytes in use, peak`, async () => {
    await initBackend(backend);
    resetPeakMemory();
    const base = deviceMemory();
    const a = tf.zeros([250_000]); // 1 MB
    const b = tf.add(a, 1); // + 1 MB and a scalar
    const mid = deviceMemory();
    assert.equal(mid.tensors - base.tensors, 2);
    assert.equal(mid.bytes_in_use - base.bytes_in_use, 2_000_000);
    tf.dispose([a, b]);
    const end = deviceMemory();
    assert.equal(end.tensors, base.tensors);
    assert.equal(end.bytes_in_use, base.bytes_in_use);
    // The peak saw both megabytes alive at once (wasm: the heap, which holds them).
    assert.ok(end.peak_bytes >= base.bytes_in_use + 2_000_000, `peak ${end.peak_bytes}`);
    assert.equal(end.backend, backend);
    assert.equal(end.pool_budget_bytes, null);
    assert.ok(end.bytes_pooled >= 0);
  });
}
