/** The zoo's training order and the concurrent scheduler's choices (pure), then one real concurrent run. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sdd, tmp } from '../../../test/helpers.js';
import { ZOO, ZOO_NAMES } from './index.js';
import { blockedBy, readyToStart } from './schedule.js';
import { ZOO_DIR } from './store.js';

const needs: Record<string, string[]> = { a: [], b: ['a'], c: ['b', 'x'], d: [] };
const needsOf = (n: string) => needs[n];

test('zoo order is a dependency order: every model comes after what it needs', () => {
  for (const [i, name] of ZOO_NAMES.entries()) {
    for (const m of ZOO[name].needs)
      assert.ok(ZOO_NAMES.indexOf(m) >= 0 && ZOO_NAMES.indexOf(m) < i, `${name} needs ${m}, listed later`);
  }
});

test('readyToStart: waits for needed models in the batch, not for shipped ones', () => {
  const requested = new Set(['a', 'b', 'c', 'd']);
  assert.deepEqual(readyToStart(['a', 'b', 'c', 'd'], needsOf, requested, new Set()), ['a', 'd']);
  assert.deepEqual(readyToStart(['b', 'c'], needsOf, requested, new Set(['a'])), ['b']);
  // x is not being trained (the shipped one is used): only b gates c.
  assert.deepEqual(readyToStart(['c'], needsOf, requested, new Set(['a', 'b'])), ['c']);
  assert.deepEqual(readyToStart(['c'], needsOf, new Set(['c']), new Set()), ['c']);
});

test('blockedBy: a failure blocks its dependents, transitively, and nothing else', () => {
  const blocked = blockedBy(['b', 'c', 'd'], needsOf, new Set(['a']));
  assert.deepEqual([...blocked.entries()].sort(), [
    ['b', 'a'],
    ['c', 'b'],
  ]);
  assert.equal(blockedBy(['b', 'c', 'd'], needsOf, new Set()).size, 0);
});

test('sdd zoo train --jobs 2: the VAE starts only after the CLIP it needs has trained, and uses that one', async () => {
  const zoo = tmp();
  cpSync(join(ZOO_DIR, 'featnet'), join(zoo, 'featnet'), { recursive: true }); // needed, not retrained: the shipped one
  const cache = tmp();
  const r = await sdd(
    ['zoo', 'train', 'vae', 'clip', '--jobs', '2', '--steps', '3', '--train-n', '64', '--eval-n', '200'],
    { env: { SDD_ZOO_DIR: zoo, SDD_CACHE: cache } },
  );
  assert.equal(r.exitCode, 0, r.all);
  const card = (m: string) =>
    JSON.parse(readFileSync(join(zoo, m, 'card.json'), 'utf-8')) as {
      weights: { sha256: string };
      architecture: { perceptual?: { sha256?: string } };
    };
  assert.equal(card('vae').architecture.perceptual?.sha256, card('clip').weights.sha256);
  assert.match(r.all ?? '', /clip trained in/);
  assert.match(r.all ?? '', /vae trained in/);
});
