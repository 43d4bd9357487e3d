/** Paired statistics against NumPy/SciPy (test/fixtures/regress/make_fixture.py). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../runs/env.js';
import { benjaminiHochberg, minimumDetectableEffect, pairedBootstrap, wilcoxon } from './stats.js';

const fx = JSON.parse(readFileSync(join(PROJECT_ROOT, 'test/fixtures/regress/stats.json'), 'utf-8')) as {
  wilcoxon: Record<string, { d: number[]; p: number; statistic?: number }>;
  bh: { p: number[]; adjusted: number[] };
  bootstrap: { x: number[]; lo: number; hi: number; se: number };
};

test('Wilcoxon signed-rank: exact (n ≤ 50, no ties) and normal approximation with ties/zeros match SciPy (rel. 1e-6)', () => {
  const s = wilcoxon(fx.wilcoxon.small.d);
  assert.equal(s.method, 'exact');
  assert.ok(Math.abs(s.p - fx.wilcoxon.small.p) <= 1e-9 + 1e-6 * fx.wilcoxon.small.p, `${s.p} vs ${fx.wilcoxon.small.p}`);
  const t = wilcoxon(fx.wilcoxon.ties.d);
  assert.equal(t.method, 'approx');
  assert.equal(t.statistic, fx.wilcoxon.ties.statistic);
  assert.ok(Math.abs(t.p - fx.wilcoxon.ties.p) <= 1e-6 * Math.max(fx.wilcoxon.ties.p, 1e-3), `${t.p} vs ${fx.wilcoxon.ties.p}`);
  const b = wilcoxon(fx.wilcoxon.big.d);
  assert.ok(Math.abs(b.p - fx.wilcoxon.big.p) <= 1e-6 * Math.max(fx.wilcoxon.big.p, 1e-3), `${b.p} vs ${fx.wilcoxon.big.p}`);
});

test('Benjamini–Hochberg adjusted p-values match the definition and SciPy (abs. 1e-12)', () => {
  benjaminiHochberg(fx.bh.p).forEach((v, i) => assert.ok(Math.abs(v - fx.bh.adjusted[i]) < 1e-12));
});

test('paired bootstrap CI agrees with SciPy percentile bootstrap within Monte Carlo error (0.25 SE); seeded', () => {
  const ci = pairedBootstrap(fx.bootstrap.x, { resamples: 20000, seed: 3 });
  assert.ok(Math.abs(ci.lo - fx.bootstrap.lo) < 0.25 * fx.bootstrap.se, `lo ${ci.lo} vs ${fx.bootstrap.lo}`);
  assert.ok(Math.abs(ci.hi - fx.bootstrap.hi) < 0.25 * fx.bootstrap.se, `hi ${ci.hi} vs ${fx.bootstrap.hi}`);
  assert.deepEqual(pairedBootstrap(fx.bootstrap.x, { seed: 3 }), pairedBootstrap(fx.bootstrap.x, { seed: 3 }));
  const mde = minimumDetectableEffect(fx.bootstrap.x);
  assert.ok(mde > 0 && mde < 0.1);
});
