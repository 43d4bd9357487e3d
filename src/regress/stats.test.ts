/** Paired statistics against NumPy/SciPy (test/fixtures/regress/make_fixture.py). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../util/env.js';
import { benjaminiHochberg, minimumDetectableEffect, pairedBootstrap, twoLevelBootstrap, wilcoxon } from './stats.js';

const fx = JSON.parse(readFileSync(join(PROJECT_ROOT, 'test/fixtures/regress/stats.json'), 'utf-8')) as {
  wilcoxon: Record<string, { d: number[]; p: number; statistic?: number }>;
  bh: { p: number[]; adjusted: number[] };
  bootstrap: { x: number[]; lo: number; hi: number; se: number };
  two_level: { base: number[][]; cand: number[][]; delta: number; lo: number; hi: number; sd: number };
};

test('Wilcoxon signed-rank: exact (n ≤ 50, no ties) and normal approximation with ties/zeros match SciPy', () => {
  // Relative 1e-6 (an absolute floor of 1e-9 for the exact p, 1e-3 · 1e-6 for the approximate ones).
  const s = wilcoxon(fx.wilcoxon.small.d);
  assert.equal(s.method, 'exact');
  const small = fx.wilcoxon.small.p;
  assert.ok(Math.abs(s.p - small) <= 1e-9 + 1e-6 * small, `${s.p} vs ${small}`);
  const close = (p: number, want: number) => Math.abs(p - want) <= 1e-6 * Math.max(want, 1e-3);
  const t = wilcoxon(fx.wilcoxon.ties.d);
  assert.equal(t.method, 'approx');
  assert.equal(t.statistic, fx.wilcoxon.ties.statistic);
  assert.ok(close(t.p, fx.wilcoxon.ties.p), `${t.p} vs ${fx.wilcoxon.ties.p}`);
  const b = wilcoxon(fx.wilcoxon.big.d);
  assert.ok(close(b.p, fx.wilcoxon.big.p), `${b.p} vs ${fx.wilcoxon.big.p}`);
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

test('two-level bootstrap (seeds within sides, items jointly) agrees with NumPy within Monte Carlo error', () => {
  // 0.1 sd for the bounds, 0.05 sd for the sd itself.
  const { base, cand } = fx.two_level;
  const n = base[0].length;
  const meanOf = (rows: number[][], seeds: Int32Array, idx: Int32Array) => {
    let s = 0;
    for (const r of seeds) for (const k of idx) s += rows[r][k];
    return s / (seeds.length * idx.length);
  };
  const stat = (sb: Int32Array, sc: Int32Array, idx: Int32Array) => meanOf(cand, sc, idx) - meanOf(base, sb, idx);
  const r = twoLevelBootstrap([base.length, cand.length], n, stat, { resamples: 20000, seed: 1 });
  assert.ok(Math.abs(r.delta - fx.two_level.delta) < 1e-12);
  assert.ok(Math.abs(r.lo - fx.two_level.lo) < 0.1 * fx.two_level.sd, `lo ${r.lo} vs ${fx.two_level.lo}`);
  assert.ok(Math.abs(r.hi - fx.two_level.hi) < 0.1 * fx.two_level.sd, `hi ${r.hi} vs ${fx.two_level.hi}`);
  assert.ok(Math.abs(r.sd - fx.two_level.sd) < 0.05 * fx.two_level.sd, `sd ${r.sd} vs ${fx.two_level.sd}`);
  // Seed variance widens the interval over the item-only paired bootstrap of seed-averaged values.
  const avg = (rows: number[][]) => rows[0].map((_, k) => rows.reduce((a, row) => a + row[k], 0) / rows.length);
  const paired = pairedBootstrap(
    avg(cand).map((v, k) => v - avg(base)[k]),
    { resamples: 20000, seed: 1 },
  );
  assert.ok(r.hi - r.lo > 1.3 * (paired.hi - paired.lo), `two-level ${r.hi - r.lo} vs paired ${paired.hi - paired.lo}`);
});
