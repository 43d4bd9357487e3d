/**
 * Seeded percentile bootstrap over items: resample item indices with replacement and recompute
 * the statistic (for FID: from cached features). Quantiles by simple-statistics.
 */
import { quantileSorted } from 'simple-statistics';
import { Rng } from '../util/rng.js';

export interface Interval {
  estimate: number;
  lo: number;
  hi: number;
  level: number;
  resamples: number;
  seed: number;
}

export function bootstrap(
  n: number,
  statistic: (idx: Int32Array) => number,
  opts: { resamples?: number; level?: number; seed?: number } = {},
): Interval {
  const resamples = opts.resamples ?? 1000;
  const level = opts.level ?? 0.95;
  const seed = opts.seed ?? 0;
  const rng = new Rng(seed);
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const values: number[] = [];
  for (let r = 0; r < resamples; r++) {
    const idx = new Int32Array(n);
    for (let i = 0; i < n; i++) idx[i] = rng.int(n);
    values.push(statistic(idx));
  }
  values.sort((x, y) => x - y);
  const a = (1 - level) / 2;
  return {
    estimate: statistic(all),
    lo: quantileSorted(values, a),
    hi: quantileSorted(values, 1 - a),
    level,
    resamples,
    seed,
  };
}
