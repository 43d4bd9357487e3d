/**
 * Paired statistics for regression reports: a seeded percentile bootstrap of the mean paired
 * difference, the Wilcoxon signed-rank test (SciPy's definitions: zero_method "wilcox" drops zero
 * differences; exact null distribution for n ≤ 50 without ties, else the normal approximation with
 * the tie correction, no continuity correction), Benjamini–Hochberg adjusted p-values, and the
 * minimum detectable effect of a paired mean at a given N.
 */
import { quantileSorted, sampleStandardDeviation } from 'simple-statistics';
import { Rng } from '../util/rng.js';

export interface PairedCi {
  mean: number;
  lo: number;
  hi: number;
  level: number;
  resamples: number;
  seed: number;
}

export function pairedBootstrap(
  diffs: number[],
  opts: { resamples?: number; level?: number; seed?: number } = {},
): PairedCi {
  const resamples = opts.resamples ?? 2000;
  const level = opts.level ?? 0.95;
  const seed = opts.seed ?? 0;
  const n = diffs.length;
  if (n === 0) throw new RangeError('paired bootstrap needs at least one pair');
  const rng = new Rng(seed);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += diffs[rng.int(n)];
    means[r] = s / n;
  }
  const sorted = Array.from(means).sort((a, b) => a - b);
  const a = (1 - level) / 2;
  const mean = diffs.reduce((x, y) => x + y, 0) / n;
  return { mean, lo: quantileSorted(sorted, a), hi: quantileSorted(sorted, 1 - a), level, resamples, seed };
}

/** Average ranks (1-based) of values, ties sharing their mean rank. */
function ranks(values: number[]): { r: number[]; tieGroups: number[] } {
  const idx = values.map((v, i) => [v, i] as const).sort((x, y) => x[0] - y[0]);
  const r = new Array<number>(values.length);
  const tieGroups: number[] = [];
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1][0] === idx[i][0]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) r[idx[k][1]] = avg;
    if (j > i) tieGroups.push(j - i + 1);
    i = j + 1;
  }
  return { r, tieGroups };
}

/** Standard normal upper tail Q(z) = erfc(z/√2)/2. */
function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

function erfc(x: number): number {
  // Numerical Recipes' erfcc (Chebyshev fit), relative error < 1.2e-7 everywhere.
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const inner = 0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)));
  const mid = 0.09678418 + t * (-0.18628806 + t * inner);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * mid)));
  return x >= 0 ? r : 2 - r;
}

export interface WilcoxonResult {
  statistic: number;
  p: number;
  n: number;
  method: 'exact' | 'approx';
}

/** Two-sided Wilcoxon signed-rank test of paired differences against 0. */
export function wilcoxon(diffs: number[]): WilcoxonResult {
  const d = diffs.filter((x) => x !== 0);
  const n = d.length;
  if (n === 0) return { statistic: 0, p: 1, n: 0, method: 'exact' };
  const { r, tieGroups } = ranks(d.map(Math.abs));
  let rPlus = 0;
  let rMinus = 0;
  d.forEach((x, i) => (x > 0 ? (rPlus += r[i]) : (rMinus += r[i])));
  const T = Math.min(rPlus, rMinus);
  if (n <= 50 && tieGroups.length === 0 && diffs.length === n) {
    // Exact: counts of subsets of {1..n} by rank sum.
    const max = (n * (n + 1)) / 2;
    let counts = new Float64Array(max + 1);
    counts[0] = 1;
    for (let k = 1; k <= n; k++) {
      const next = Float64Array.from(counts);
      for (let s = k; s <= max; s++) next[s] += counts[s - k];
      counts = next;
    }
    const total = 2 ** n;
    let cdf = 0;
    for (let s = 0; s <= T; s++) cdf += counts[s];
    return { statistic: T, p: Math.min(1, (2 * cdf) / total), n, method: 'exact' };
  }
  const mean = (n * (n + 1)) / 4;
  let variance = (n * (n + 1) * (2 * n + 1)) / 24;
  for (const t of tieGroups) variance -= (t * t * t - t) / 48;
  const z = (T - mean) / Math.sqrt(variance);
  return { statistic: T, p: Math.min(1, 2 * normalSf(Math.abs(z))), n, method: 'approx' };
}

/** Benjamini–Hochberg adjusted p-values (monotone, capped at 1), in input order. */
export function benjaminiHochberg(p: number[]): number[] {
  const m = p.length;
  const order = p.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const adj = new Array<number>(m);
  let running = 1;
  for (let k = m - 1; k >= 0; k--) {
    running = Math.min(running, (order[k][0] * m) / (k + 1));
    adj[order[k][1]] = running;
  }
  return adj;
}

const Z_ALPHA = 1.959964; // z_{1−α/2}, α = 0.05
const Z_BETA = 0.841621; // z_{1−β}, power 0.8

/**
 * Minimum detectable effect of a paired mean difference at α (two-sided) and power 1 − β, from
 * the differences' standard deviation: (z_{1−α/2} + z_{1−β})·sd/√n. Defaults α = 0.05, power 0.8.
 */
export function minimumDetectableEffect(diffs: number[], zAlpha = Z_ALPHA, zBeta = Z_BETA): number {
  if (diffs.length < 2) return Infinity;
  return mdeFromSd(sampleStandardDeviation(diffs) / Math.sqrt(diffs.length), zAlpha, zBeta);
}

/** The same MDE from the standard error of the difference itself (e.g. a bootstrap's sd of Δ). */
export function mdeFromSd(se: number, zAlpha = Z_ALPHA, zBeta = Z_BETA): number {
  return (zAlpha + zBeta) * se;
}

/** 0, 1, …, n − 1: the identity draw of a bootstrap. */
export const iota = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

export interface TwoLevelResult {
  /** Observed Δ = mean(candidate) − mean(baseline) over every seed × item. */
  delta: number;
  lo: number;
  hi: number;
  /** Two-sided bootstrap p-value with the +1 correction. */
  p: number;
  /** Bootstrap standard deviation of Δ. */
  sd: number;
  resamples: number;
}

/**
 * Bootstrap percentile CI and p-value of a difference between two sides that each ran several
 * training seeds on the same items: every resample draws seeds with replacement within each side
 * (independently: another seed is another training run, with nothing to pair it with) and one set
 * of item indices shared by both sides (the same images). `stat(baseSeeds, candSeeds, items)`
 * returns the candidate − baseline difference on that resample; called with the identity draws
 * first for the observed Δ unless the caller already has it (`observed`). With one seed per side
 * this is the plain paired item bootstrap.
 */
export function twoLevelBootstrap(
  seeds: [number, number],
  items: number,
  stat: (baseSeeds: Int32Array, candSeeds: Int32Array, itemIdx: Int32Array) => number,
  opts: { resamples?: number; level?: number; seed?: number; observed?: number } = {},
): TwoLevelResult {
  const resamples = opts.resamples ?? 2000;
  const level = opts.level ?? 0.95;
  const draw = drawer(opts.seed ?? 0);
  const delta = opts.observed ?? stat(iota(seeds[0]), iota(seeds[1]), iota(items));
  const deltas = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) deltas[r] = stat(draw(seeds[0]), draw(seeds[1]), draw(items));
  const sorted = Array.from(deltas).sort((a, b) => a - b);
  const pLow = (sorted.filter((x) => x <= 0).length + 1) / (resamples + 1);
  const pHigh = (sorted.filter((x) => x >= 0).length + 1) / (resamples + 1);
  const p = Math.min(1, 2 * Math.min(pLow, pHigh));
  return { delta, ...percentiles(sorted, level), p, sd: sampleStandardDeviation(sorted), resamples };
}

/** Draws n indices of 0..n−1 with replacement from one seeded stream (shared by the bootstraps here). */
function drawer(seed: number): (n: number) => Int32Array {
  const rng = new Rng(seed);
  return (n) => Int32Array.from({ length: n }, () => rng.int(n));
}

/** The equal-tailed percentile interval of sorted bootstrap values. */
function percentiles(sorted: number[], level: number): { lo: number; hi: number } {
  const a = (1 - level) / 2;
  return { lo: quantileSorted(sorted, a), hi: quantileSorted(sorted, 1 - a) };
}

/** The equal-tailed percentile interval of bootstrap values in any order. */
export function percentileInterval(values: ArrayLike<number>, level = 0.95): { lo: number; hi: number } {
  return percentiles(
    Array.from(values).sort((a, b) => a - b),
    level,
  );
}

/** The runs of one side at one prompt: `seeds` training runs, each scored on the same `items` images. */
export interface Stratum {
  seeds: number;
  items: number;
}

/** A resample of a stratum: seed indices and item indices (both with replacement). */
export interface StratumDraw {
  seeds: Int32Array;
  items: Int32Array;
}

export interface SeedItemResult {
  estimate: number;
  lo: number;
  hi: number;
  sd: number;
  level: number;
  resamples: number;
  seed: number;
  /** The resampled statistics in draw order: independent strata (other seeds) combine replicate by replicate. */
  replicates: Float64Array;
}

/**
 * The one-sided form of `twoLevelBootstrap`, for reporting a level rather than a difference: seeds
 * are drawn with replacement (another seed is another training run; one seed stays fixed) and one
 * set of item indices is shared by every drawn seed (the same evaluation images); `items` 0 means
 * no per-item values (only seeds move). The identity draws give the estimate unless `observed` is
 * passed. Reports average the replicates of independently seeded prompts into a method's interval.
 */
export function seedItemBootstrap(
  stratum: Stratum,
  stat: (draw: StratumDraw) => number,
  opts: { resamples?: number; level?: number; seed?: number; observed?: number } = {},
): SeedItemResult {
  const resamples = opts.resamples ?? 1000;
  const level = opts.level ?? 0.95;
  const seed = opts.seed ?? 0;
  const draw = drawer(seed);
  const estimate = opts.observed ?? stat({ seeds: iota(stratum.seeds), items: iota(stratum.items) });
  const replicates = new Float64Array(resamples);
  // One seed stays fixed (drawing it would change nothing but the stream).
  const seeds = () => (stratum.seeds > 1 ? draw(stratum.seeds) : iota(stratum.seeds));
  for (let r = 0; r < resamples; r++) replicates[r] = stat({ seeds: seeds(), items: draw(stratum.items) });
  const sorted = Array.from(replicates).sort((a, b) => a - b);
  const sd = resamples > 1 ? sampleStandardDeviation(sorted) : 0;
  return { estimate, ...percentiles(sorted, level), sd, level, resamples, seed, replicates };
}
