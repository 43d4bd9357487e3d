/**
 * The sync-reads-forbidden mode really forbids: dataSync/arraySync/bufferSync throw naming the
 * caller; data() works.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './index.js';
import { forbidSyncReads, SyncReadError } from './sync_guard.js';

await initBackend('cpu');

test('every synchronous read throws SyncReadError naming this file; awaited reads still work', async () => {
  const x = tf.tensor1d([1, 2, 3]);
  assert.deepEqual([...x.dataSync()], [1, 2, 3]); // before: allowed
  forbidSyncReads();
  for (const read of [() => x.dataSync(), () => x.arraySync(), () => x.bufferSync()]) {
    assert.throws(
      read,
      (e: Error) =>
        e instanceof SyncReadError && /sync_guard\.test\.ts/.test(e.message) && /SDD_FORBID_SYNC_READS/.test(e.message),
    );
  }
  // An op on a tensor from another op: tfjs's own sync reads are caught too.
  assert.throws(() => tf.square(x).dataSync(), SyncReadError);
  assert.deepEqual([...(await tf.square(x).data())], [1, 4, 9]);
  assert.deepEqual(await x.array(), [1, 2, 3]);
});
