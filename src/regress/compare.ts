/**
 * Paired comparison of two sides of the same experiment (same prompts, seeds and evaluation
 * images): per metric and prompt the mean difference candidate − baseline with a paired bootstrap
 * CI, a p-value (Wilcoxon signed-rank for per-item metrics, bootstrap for FID/KID), Benjamini–
 * Hochberg over the whole metric × prompt grid, the minimum detectable effect, and a verdict.
 */
import { fidFromFeatures } from '../metrics/fid.js';
import { kernelMatrices, mmd2Rows, type KernelMatrices } from '../metrics/kid.js';
import { METRICS, type Direction, type MetricSpec, type SetMetric } from '../metrics/registry.js';
import {
  benjaminiHochberg,
  iota,
  mdeFromSd,
  minimumDetectableEffect,
  pairedBootstrap,
  twoLevelBootstrap,
  wilcoxon,
} from './stats.js';

export interface SideRun {
  prompt: string;
  seed: number;
  /** Per-item values of the compared item metrics (clip_directional, hit, …), from the run's items.json. */
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
function regressed(): { items: string[]; sets: SetMetric[]; thresholds: Record<string, Threshold> } {
  const specs = METRICS.filter((m) => m.regress && m.better);
  const name = (m: MetricSpec) => (m.interval.kind === 'items' ? m.interval.key : m.key);
  const threshold = (m: MetricSpec): Threshold => ({
    min_effect: m.regress!.minEffect,
    worse: m.better === 'higher' ? 'lower' : 'higher',
  });
  return {
    items: specs.flatMap((m) => (m.interval.kind === 'items' ? [m.interval.key] : [])),
    sets: specs.flatMap((m) => (m.interval.kind === 'set' ? [m.interval.set] : [])),
    thresholds: Object.fromEntries(specs.map((m) => [name(m), threshold(m)])),
  };
}

/** Evaluation images of a run: the length of its per-item values (items.json also names the prompt). */
const itemCount = (r: SideRun): number => Object.values(r.items).find((v) => Array.isArray(v))!.length;

export type Verdict = 'regressed' | 'improved' | 'significant, below threshold' | 'within noise';

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
  if (metric === 'fid') {
    return fidFromFeatures(gather(runs, 'edited', seeds, idx), n, gather(runs, 'original', seeds, idx), n, d);
  }
  const items = itemCount(runs[0]);
  if (!side.kernels) {
    const [all, every] = [iota(runs.length), iota(items)];
    const [edited, original] = [gather(runs, 'edited', all, every), gather(runs, 'original', all, every)];
    side.kernels = kernelMatrices(edited, original, runs.length * items, d);
  }
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

/**
 * The verdict of a cell: within noise unless the BH-adjusted p is below alpha and the CI excludes 0;
 * then a significant difference no larger than the metric's smallest effect that matters is
 * "significant, below threshold" (real, but too small to count), a larger one regressed or improved.
 */
function verdictOf(delta: number, lo: number, hi: number, pAdj: number, t: Threshold, alpha: number): Verdict {
  const excludesZero = lo > 0 || hi < 0;
  if (!(pAdj < alpha && excludesZero)) return 'within noise';
  if (Math.abs(delta) <= t.min_effect) return 'significant, below threshold';
  const worse = t.worse === 'lower' ? hi < 0 : lo > 0;
  return worse ? 'regressed' : 'improved';
}

type Pending = Omit<Comparison, 'p_adjusted' | 'verdict'>;

interface Settings {
  thresholds: Record<string, Threshold>;
  resamples: number;
  alpha: number;
  seed: number;
}

/** One prompt's runs of both sides, by seed, and what the comparisons of its metrics share. */
interface PromptSides {
  prompt: string;
  b: SideRun[];
  cs: SideRun[];
  /** Items per run. */
  n: number;
  seeds: [number, number];
  twoLevel: boolean;
}

const TWO_LEVEL = 'two-level bootstrap (seeds, items)';

/** A per-item metric: item by item with one seed per side, else the two-level bootstrap. */
function itemComparison(x: PromptSides, metric: string, o: Settings): Pending {
  const { prompt, b, cs, n, seeds } = x;
  const bv = b.flatMap((r) => r.items[metric]);
  const cv = cs.flatMap((r) => r.items[metric]);
  const head = { metric, prompt, n, seeds, baseline: mean(bv), candidate: mean(cv) };
  const threshold = o.thresholds[metric];
  if (x.twoLevel) {
    const stat = (sb: Int32Array, sc: Int32Array, idx: Int32Array) =>
      itemMean(cs, metric, sc, idx) - itemMean(b, metric, sb, idx);
    const r = twoLevelBootstrap(seeds, n, stat, { resamples: o.resamples, level: 1 - o.alpha, seed: o.seed });
    return { ...head, delta: r.delta, lo: r.lo, hi: r.hi, p: r.p, test: TWO_LEVEL, mde: mdeFromSd(r.sd), threshold };
  }
  const diffs = cv.map((v, i) => v - bv[i]);
  const ci = pairedBootstrap(diffs, { resamples: o.resamples, level: 1 - o.alpha, seed: o.seed });
  const w = wilcoxon(diffs);
  const mde = minimumDetectableEffect(diffs);
  return { ...head, delta: ci.mean, lo: ci.lo, hi: ci.hi, p: w.p, test: `wilcoxon (${w.method})`, mde, threshold };
}

/** A set-level metric (FID, KID): recomputed per resample of both sides. */
function setComparison(x: PromptSides, sides: [SetSide, SetSide], metric: SetMetric, o: Settings): Pending {
  const { prompt, b, cs, n, seeds } = x;
  // FID recomputes covariances and a 2048/128-d spectrum per resample: fewer resamples than
  // the per-item metrics (bootstrap p resolution 1/(R+1)); KID reuses its kernel matrices.
  const R = Math.min(o.resamples, metric === 'fid' ? 500 : 2000);
  const baseline = setMetric(metric, sides[0], iota(b.length), iota(n));
  const candidate = setMetric(metric, sides[1], iota(cs.length), iota(n));
  const stat = (sb: Int32Array, sc: Int32Array, idx: Int32Array) =>
    setMetric(metric, sides[1], sc, idx) - setMetric(metric, sides[0], sb, idx);
  const opts = { resamples: R, level: 1 - o.alpha, seed: o.seed, observed: candidate - baseline };
  const r = twoLevelBootstrap(seeds, n, stat, opts);
  const test = x.twoLevel ? TWO_LEVEL : 'paired bootstrap';
  // MDE from the bootstrap spread of Δ (no per-item differences for a set metric).
  const [head, threshold] = [{ metric, prompt, n, seeds, baseline, candidate }, o.thresholds[metric]];
  return { ...head, delta: r.delta, lo: r.lo, hi: r.hi, p: r.p, test, mde: mdeFromSd(r.sd), threshold };
}

function promptSides(prompt: string, base: SideRun[], cand: SideRun[]): PromptSides {
  const b = base.filter((r) => r.prompt === prompt).sort((x, y) => x.seed - y.seed);
  const cs = cand.filter((r) => r.prompt === prompt).sort((x, y) => x.seed - y.seed);
  const n = itemCount(b[0]);
  if ([...b, ...cs].some((r) => itemCount(r) !== n)) {
    const why = 'the runs do not have the same number of evaluation images (not the same images)';
    throw new Error(`prompt ${prompt}: ${why}`);
  }
  return { prompt, b, cs, n, seeds: [b.length, cs.length], twoLevel: b.length > 1 || cs.length > 1 };
}

/**
 * Sides are matched by prompt; items within a run are the same evaluation images in the same
 * order, whatever the seed. With one seed per side the comparison is paired item by item (paired
 * bootstrap CI, Wilcoxon p): it cannot see training-seed variance, so a result is conditional on
 * the seeds. With several seeds on either side, seeds are resampled within each side and items
 * jointly (two-level bootstrap), so a candidate that differs only in its seeds is within noise.
 * Every prompt present on both sides is compared.
 */
export function compareSides(
  base: SideRun[],
  cand: SideRun[],
  opts: { thresholds?: Record<string, Threshold>; resamples?: number; alpha?: number; seed?: number } = {},
): Comparison[] {
  const what = regressed();
  const o: Settings = {
    thresholds: { ...what.thresholds, ...(opts.thresholds ?? {}) },
    resamples: opts.resamples ?? 2000,
    alpha: opts.alpha ?? 0.05,
    seed: opts.seed ?? 0,
  };
  const prompts = [...new Set(base.map((r) => r.prompt))].filter((p) => cand.some((r) => r.prompt === p)).sort();
  const out: Pending[] = [];
  for (const prompt of prompts) {
    const x = promptSides(prompt, base, cand);
    for (const metric of what.items) out.push(itemComparison(x, metric, o));
    const sides: [SetSide, SetSide] = [{ runs: x.b }, { runs: x.cs }];
    for (const metric of what.sets) out.push(setComparison(x, sides, metric, o));
  }
  const adj = benjaminiHochberg(out.map((x) => x.p));
  const verdict = (x: Pending, p: number) => verdictOf(x.delta, x.lo, x.hi, p, x.threshold, o.alpha);
  return out.map((x, i) => ({ ...x, p_adjusted: adj[i], verdict: verdict(x, adj[i]) }));
}
