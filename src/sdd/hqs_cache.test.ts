/** The HQS cache: hits carry the original scan's time; a change of key, weights or code recomputes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HqsScan } from './hqs.js';

process.env.SDD_CACHE = mkdtempSync(join(tmpdir(), 'sdd-hqs-cache-'));
const { cachedHqs, hqsCacheFile, HQS_CODE_VERSION } = await import('./hqs_cache.js');

function fakeScan(seconds: number): HqsScan {
  return { timesteps: [100, 200], stats: { N: [[1], [2]], H: [[3], [4]], H_full: [[5], [6]] }, images: 1, seconds };
}

test('a hit returns the original scan and its measured seconds, marked cached; other keys, weights or code versions recompute', async () => {
  let computed = 0;
  const compute = (s: number) => async () => (computed++, fakeScan(s));
  const key = { world: { vae: 'aaa', ldm: 'bbb' }, prompt: 'p', seed: 0 };
  const first = await cachedHqs(key, compute(12.5));
  assert.deepEqual([first.cached, first.scan.seconds, computed], [false, 12.5, 1]);
  const hit = await cachedHqs(structuredClone(key), compute(0.1));
  assert.deepEqual(
    [hit.cached, hit.scan.seconds, computed],
    [true, 12.5, 1],
    'the second run is charged the first scan time',
  );
  // New weights (the world fingerprint is part of the key): a different entry, recomputed.
  const retrained = await cachedHqs({ ...key, world: { vae: 'aaa', ldm: 'ccc' } }, compute(3));
  assert.deepEqual([retrained.cached, computed], [false, 2]);
  // New scan code: recomputed even though the key is the same.
  const newCode = await cachedHqs(key, compute(4), HQS_CODE_VERSION + 1);
  assert.deepEqual([newCode.cached, computed], [false, 3]);
  assert.notEqual(hqsCacheFile(key), hqsCacheFile(key, HQS_CODE_VERSION + 1));
});

test('a torn cache file, or one whose stored key differs, is recomputed', async () => {
  let computed = 0;
  const key = { torn: true };
  writeFileSync(hqsCacheFile(key), '{"key": ');
  const a = await cachedHqs(key, async () => (computed++, fakeScan(1)));
  assert.deepEqual([a.cached, computed], [false, 1]);
  // Same file name, another key inside (a hash collision or a hand-edited file).
  writeFileSync(
    hqsCacheFile(key),
    JSON.stringify({ key: { code: HQS_CODE_VERSION, key: { other: 1 } }, scan: fakeScan(9) }),
  );
  const b = await cachedHqs(key, async () => (computed++, fakeScan(2)));
  assert.deepEqual([b.cached, b.scan.seconds, computed], [false, 2, 2]);
});
