/**
 * compareSides reads what to compare from the metric table: a metric registered with a `regress`
 * entry is compared (under its items.json key) and judged against its better direction, with no
 * edit here. Synthetic sides: one prompt, one seed, the same features on both sides.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registerMetric } from '../metrics/registry.js';
import { Rng } from '../util/rng.js';
import { compareSides, type SideRun } from './compare.js';

// A rate in [0, 1], higher is better, per-item values under `dummy`; a drop of more than 0.05 can regress.
const [interval, regress] = [{ kind: 'items', key: 'dummy' } as const, { minEffect: 0.05 }];
registerMetric({ key: 'dummy_rate', name: 'dummy rate', better: 'higher', range: [0, 1], interval, regress });

const N = 24;
const DIMS = 4;

function side(dummy: (k: number) => number): SideRun {
  const rng = new Rng(3);
  const feats = Float32Array.from({ length: N * DIMS }, () => rng.normal());
  const same = Array.from({ length: N }, (_, k) => (k % 3 === 0 ? 1 : 0));
  const values = Array.from({ length: N }, (_, k) => dummy(k));
  const items = { clip_directional: same, hit: same, preserved: same, identity: same, dummy: values };
  return { prompt: 'p', seed: 0, items, features: { original: feats, edited: feats.map((x) => x + 0.1), dims: DIMS } };
}

test('a registered metric with a regress entry is compared and judged by its direction', () => {
  const rows = compareSides([side(() => 0.9)], [side((k) => (k % 2 ? 0.5 : 0.6))], { resamples: 200 });
  assert.deepEqual(
    rows.map((r) => r.metric),
    ['clip_directional', 'hit', 'preserved', 'identity', 'dummy', 'fid', 'kid'],
    'item metrics in table order, then the set-level ones',
  );
  const dummy = rows.find((r) => r.metric === 'dummy')!;
  assert.deepEqual(dummy.threshold, { min_effect: 0.05, worse: 'lower' });
  assert.equal(dummy.verdict, 'regressed');
  assert.ok(rows.filter((r) => r.metric !== 'dummy').every((r) => r.verdict === 'within noise' && r.delta === 0));
});

test('a significant drop smaller than the min effect is "significant, below threshold", not "within noise"', () => {
  // Every item 0.02 lower (± a little): the CI excludes 0 and p is tiny, but 0.02 < min effect 0.05.
  const rows = compareSides([side(() => 0.9)], [side((k) => 0.88 + 0.001 * (k % 3))], { resamples: 200 });
  const dummy = rows.find((r) => r.metric === 'dummy')!;
  assert.ok(dummy.hi < 0 && dummy.p_adjusted < 0.05, JSON.stringify(dummy));
  assert.equal(dummy.verdict, 'significant, below threshold');
  // The same drop beyond the min effect regresses.
  const big = compareSides([side(() => 0.9)], [side((k) => 0.8 + 0.001 * (k % 3))], { resamples: 200 });
  assert.equal(big.find((r) => r.metric === 'dummy')!.verdict, 'regressed');
});
