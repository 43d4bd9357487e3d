/** CLIP metrics on hand-made vectors, Eq. 13–15 on known numbers, and the seeded bootstrap. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clipScore, directionalSimilarity, textDirection } from './clip.js';
import { breakEven, totalTime } from './total_time.js';
import { bootstrap } from './bootstrap.js';

test('directional CLIP: aligned, opposite and orthogonal edits; zero edits counted and scored 0', () => {
  const src = [1, 0, 0];
  const dir = textDirection([[0, 1, 0]], [[1, 0, 0]]); // (−1, 1, 0)/√2
  assert.ok(Math.abs(dir[0] + Math.SQRT1_2) < 1e-12 && Math.abs(dir[1] - Math.SQRT1_2) < 1e-12);
  const r = directionalSimilarity(
    [
      [0, 1, 0],
      [1, -1, 0],
      [1, 0, 1],
      [2, 0, 0],
    ],
    [src, src, src, src],
    dir,
  );
  // edit 1 moves along the text direction: cos = 1; edit 2 (normalised) goes (1/√2 − 1, −1/√2, 0);
  // edit 3 is orthogonal to the direction's plane component; edit 4 is the same image scaled: no edit.
  assert.ok(Math.abs(r.per_item[0] - 1) < 1e-12);
  const e2 = [Math.SQRT1_2 - 1, -Math.SQRT1_2, 0];
  const expected2 = (e2[0] * dir[0] + e2[1] * dir[1]) / Math.hypot(...e2);
  assert.ok(Math.abs(r.per_item[1] - expected2) < 1e-12);
  const e3 = [Math.SQRT1_2 - 1, 0, Math.SQRT1_2];
  assert.ok(Math.abs(r.per_item[2] - (e3[0] * dir[0]) / Math.hypot(...e3)) < 1e-12);
  assert.equal(r.per_item[3], 0);
  assert.equal(r.zero_edits, 1);
  assert.ok(Math.abs(r.clip_directional - (1 + expected2 + r.per_item[2]) / 4) < 1e-12);
});

test('CLIP score is 100·cos averaged, clamped at 0', () => {
  assert.ok(
    Math.abs(
      clipScore(
        [
          [1, 0],
          [1, 1],
        ],
        [
          [1, 0],
          [1, 0],
        ],
      ).clip_score -
        (100 + 100 * Math.SQRT1_2) / 2,
    ) < 1e-9,
  );
  assert.equal(clipScore([[1, 0]], [[-1, 0]]).clip_score, 0);
});

test('Eq. 13–15 on the paper Table 1 timing shape and known numbers', () => {
  const sdd = { train_s: 14, infer_s: 0.005 };
  const sdedit = { train_s: 0, infer_s: 2.2 };
  assert.equal(totalTime(sdedit, 100, 10), 2200);
  assert.ok(Math.abs(totalTime(sdd, 100, 10) - 145) < 1e-9);
  const m = breakEven(sdd, sdedit)!;
  assert.ok(Math.abs(m - 14 / (2.2 - 0.005)) < 1e-12);
  // At the break-even point the totals agree; past it SDD is cheaper.
  assert.ok(Math.abs(totalTime(sdd, m, 10) - totalTime(sdedit, m, 10)) < 1e-9);
  assert.ok(totalTime(sdd, Math.ceil(m) + 1, 10) < totalTime(sdedit, Math.ceil(m) + 1, 10));
  assert.equal(breakEven(sdedit, sdd), null, 'a slower-per-image method without training never catches up');
});

test('bootstrap: seeded, brackets the estimate, narrows with n', () => {
  const xs = Array.from({ length: 400 }, (_, i) => Math.sin(i * 1.7) + 2);
  const mean = (idx: Int32Array) => idx.reduce((s, i) => s + xs[i], 0) / idx.length;
  const a = bootstrap(xs.length, mean, { resamples: 500, seed: 1 });
  assert.deepEqual(a, bootstrap(xs.length, mean, { resamples: 500, seed: 1 }));
  assert.ok(a.lo < a.estimate && a.estimate < a.hi);
  const small = bootstrap(40, (idx) => idx.reduce((s, i) => s + xs[i], 0) / idx.length, { resamples: 500, seed: 1 });
  assert.ok(small.hi - small.lo > a.hi - a.lo);
  // Standard error of the mean ≈ sd/√n: the 95% interval is about ±1.96 of it.
  const sd = Math.sqrt(xs.reduce((s, v) => s + (v - a.estimate) ** 2, 0) / (xs.length - 1));
  const half = (a.hi - a.lo) / 2;
  assert.ok(Math.abs(half - (1.96 * sd) / Math.sqrt(xs.length)) < 0.25 * half, `half-width ${half}`);
});
