/**
 * Paired comparison of two sides of the same experiment (same prompts, seeds and evaluation
 * images): per metric and prompt the mean difference candidate − baseline with a paired bootstrap
 * CI, a p-value (Wilcoxon signed-rank for per-item metrics, bootstrap for FID/KID), Benjamini–
 * Hochberg over the whole metric × prompt grid, the minimum detectable effect, and a verdict.
 */
import { fidFromFeatures } from '../metrics/fid.js';
import { kernelMatrices, mmd2Rows, type KernelMatrices } from '../metrics/kid.js';
import { METRICS, type Direction, type SetMetric } from '../metrics/registry.js';
import { benjaminiHochberg, iota, mdeFromSd, minimumDetectableEffect, pairedBootstrap, twoLevelBootstrap, wilcoxon } from './stats.js';

export interface SideRun {
  prompt: string;
  seed: number;
  /** Per-item values of the compared item metrics (REGRESS_ITEMS), from the run's items.json. */
  items: Record<string, number[]>;
  features: { original: Float32Array; edited: Float32Array; dims: number };
}

export interface Threshold {
  min_effect: number;
  worse: Direction;
}

/**
 * What `sdd regress` compares, from the metric table (src/metrics/registry.ts): every metric with
 * a `regress` entry, per-item metrics under their items.json key (hit, preserved), set-level ones
 * (FID, KID) under their own. A regression is a move against the metric's better direction.
 */
const REGRESSED = METRICS.filter((m) => m.regress && m.better);
const REGRESS_ITEMS = REGRESSED.flatMap((m) => (m.interval.kind === 'items' ? [m.interval.key] : []));
const REGRESS_SETS = REGRESSED.flatMap((m) => (m.interval.kind === 'set' ? [m.interval.set] : []));

/** Evaluation images of a run: the length of its per-item values. */
const itemCount = (r: SideRun): number => r.items[REGRESS_ITEMS[0]].length;

export const DEFAULT_THRESHOLDS: Record<string, Threshold> = Object.fromEntries(
  REGRESSED.map((m) => [
    m.interval.kind === 'items' ? m.interval.key : m.key,
    { min_effect: m.regress!.minEffect, worse: m.better === 'higher' ? 'lower' : 'higher' },
  ]),
);

export type Verdict = 'regressed' | 'improved' | 'within noise';

export interface Comparison {
  metric: string;
  prompt: string;
  /** Items per run. */
  n: number;
  /** Seeds (training runs) on the baseline and candidate side. */
  seeds: [number, number];
  baseline: number;
  candidate: number;
  delta: number;
  lo: number;
  hi: number;
  p: number;
  p_adjusted: number;
  test: string;
  mde: number | null;
  threshold: Threshold;
  verdict: Verdict;
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

/** Features of items `idx` of the runs `seeds` (in that order), for a set-level metric. */
function gather(runs: SideRun[], key: 'original' | 'edited', seeds: Int32Array, idx: Int32Array): Float32Array {
  const d = runs[0].features.dims;
  const out = new Float32Array(seeds.length * idx.length * d);
  let at = 0;
  for (const s of seeds) {
    const f = runs[s].features[key];
    for (const k of idx) {
      out.set(f.subarray(k * d, (k + 1) * d), at);
      at += d;
    }
  }
  return out;
}

/** A side's FID features, with KID's kernel matrices over all its (seed, item) rows made once. */
interface SetSide {
  runs: SideRun[];
  kernels?: KernelMatrices;
}

function setMetric(metric: SetMetric, side: SetSide, seeds: Int32Array, idx: Int32Array): number {
  const { runs } = side;
  const d = runs[0].features.dims;
  const n = seeds.length * idx.length;
  if (metric === 'fid') return fidFromFeatures(gather(runs, 'edited', seeds, idx), n, gather(runs, 'original', seeds, idx), n, d);
  const items = itemCount(runs[0]);
  if (!side.kernels) side.kernels = kernelMatrices(gather(runs, 'edited', iota(runs.length), iota(items)), gather(runs, 'original', iota(runs.length), iota(items)), runs.length * items, d);
  const rows = new Int32Array(n);
  let at = 0;
  for (const s of seeds) for (const k of idx) rows[at++] = s * items + k;
  return mmd2Rows(side.kernels, rows);
}

function itemMean(runs: SideRun[], metric: string, seeds: Int32Array, idx: Int32Array): number {
  let s = 0;
  for (const r of seeds) for (const k of idx) s += runs[r].items[metric][k];
  return s / (seeds.length * idx.length);
}

function verdictOf(delta: number, lo: number, hi: number, pAdj: number, t: Threshold, alpha: number): Verdict {
  const significant = pAdj < alpha && Math.abs(delta) > t.min_effect;
  if (!significant) return 'within noise';
  const worseSide = t.worse === 'lower' ? hi < 0 : lo > 0;
  const betterSide = t.worse === 'lower' ? lo > 0 : hi < 0;
  return worseSide ? 'regressed' : betterSide ? 'improved' : 'within noise';
}

/**
 * Sides are matched by prompt; items within a run are the same evaluation images in the same
 * order, whatever the seed. With one seed per side the comparison is paired item by item (paired
 * bootstrap CI, Wilcoxon p): it cannot see training-seed variance, so a result is conditional on
 * the seeds. With several seeds on either side, seeds are resampled within each side and items
 * jointly (two-level bootstrap), so a candidate that differs only in its seeds is within noise.
 * Every prompt present on both sides is compared.
 */
export function compareSides(base: SideRun[], cand: SideRun[], opts: { thresholds?: Record<string, Threshold>; resamples?: number; alpha?: number; seed?: number } = {}): Comparison[] {
  const thresholds = { ...DEFAULT_THRESHOLDS, ...(opts.thresholds ?? {}) };
  const resamples = opts.resamples ?? 2000;
  const alpha = opts.alpha ?? 0.05;
  const seed = opts.seed ?? 0;
  const prompts = [...new Set(base.map((r) => r.prompt))].filter((p) => cand.some((r) => r.prompt === p)).sort();
  const out: Array<Omit<Comparison, 'p_adjusted' | 'verdict'>> = [];
  for (const prompt of prompts) {
    const b = base.filter((r) => r.prompt === prompt).sort((x, y) => x.seed - y.seed);
    const cs = cand.filter((r) => r.prompt === prompt).sort((x, y) => x.seed - y.seed);
    const n = itemCount(b[0]);
    if ([...b, ...cs].some((r) => itemCount(r) !== n)) {
      throw new Error(`prompt ${prompt}: the runs do not have the same number of evaluation images (not the same images)`);
    }
    const seeds: [number, number] = [b.length, cs.length];
    const twoLevel = b.length > 1 || cs.length > 1;
    for (const metric of REGRESS_ITEMS) {
      const bv = b.flatMap((r) => r.items[metric]);
      const cv = cs.flatMap((r) => r.items[metric]);
      if (twoLevel) {
        const r = twoLevelBootstrap(seeds, n, (sb, sc, idx) => itemMean(cs, metric, sc, idx) - itemMean(b, metric, sb, idx), { resamples, level: 1 - alpha, seed });
        out.push({ metric, prompt, n, seeds, baseline: mean(bv), candidate: mean(cv), delta: r.delta, lo: r.lo, hi: r.hi, p: r.p, test: 'two-level bootstrap (seeds, items)', mde: mdeFromSd(r.sd), threshold: thresholds[metric] });
        continue;
      }
      const diffs = cv.map((v, i) => v - bv[i]);
      const ci = pairedBootstrap(diffs, { resamples, level: 1 - alpha, seed });
      const w = wilcoxon(diffs);
      out.push({ metric, prompt, n, seeds, baseline: mean(bv), candidate: mean(cv), delta: ci.mean, lo: ci.lo, hi: ci.hi, p: w.p, test: `wilcoxon (${w.method})`, mde: minimumDetectableEffect(diffs), threshold: thresholds[metric] });
    }
    const sides: [SetSide, SetSide] = [{ runs: b }, { runs: cs }];
    for (const metric of REGRESS_SETS) {
      // FID recomputes covariances and a 2048/128-d spectrum per resample: fewer resamples than
      // the per-item metrics (bootstrap p resolution 1/(R+1)); KID reuses its kernel matrices.
      const R = Math.min(resamples, metric === 'fid' ? 500 : 2000);
      const baseline = setMetric(metric, sides[0], iota(b.length), iota(n));
      const candidate = setMetric(metric, sides[1], iota(cs.length), iota(n));
      const r = twoLevelBootstrap(seeds, n, (sb, sc, idx) => setMetric(metric, sides[1], sc, idx) - setMetric(metric, sides[0], sb, idx), { resamples: R, level: 1 - alpha, seed, observed: candidate - baseline });
      // MDE from the bootstrap spread of Δ (no per-item differences for a set metric).
      out.push({ metric, prompt, n, seeds, baseline, candidate, delta: r.delta, lo: r.lo, hi: r.hi, p: r.p, test: twoLevel ? 'two-level bootstrap (seeds, items)' : 'paired bootstrap', mde: mdeFromSd(r.sd), threshold: thresholds[metric] });
    }
  }
  const adj = benjaminiHochberg(out.map((x) => x.p));
  return out.map((x, i) => ({ ...x, p_adjusted: adj[i], verdict: verdictOf(x.delta, x.lo, x.hi, adj[i], x.threshold, alpha) }));
}
