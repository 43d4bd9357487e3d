/**
 * Paired comparison of two sides of the same experiment (same prompts, seeds and evaluation
 * images): per metric and prompt the mean difference candidate − baseline with a paired bootstrap
 * CI, a p-value (Wilcoxon signed-rank for per-item metrics, bootstrap for FID/KID), Benjamini–
 * Hochberg over the whole metric × prompt grid, the minimum detectable effect, and a verdict.
 */
import { fidFromFeatures } from '../metrics/fid.js';
import { mmd2 } from '../metrics/kid.js';
import { Rng } from '../util/rng.js';
import { benjaminiHochberg, minimumDetectableEffect, pairedBootstrap, wilcoxon } from './stats.js';

export interface SideRun {
  prompt: string;
  seed: number;
  items: { clip_directional: number[]; hit: number[]; preserved: number[]; identity: number[] };
  features: { original: Float32Array; edited: Float32Array; dims: number };
}

export interface Threshold {
  min_effect: number;
  worse: 'lower' | 'higher';
}

export const DEFAULT_THRESHOLDS: Record<string, Threshold> = {
  clip_directional: { min_effect: 0.01, worse: 'lower' },
  hit: { min_effect: 0.05, worse: 'lower' },
  preserved: { min_effect: 0.02, worse: 'lower' },
  identity: { min_effect: 0.01, worse: 'lower' },
  fid: { min_effect: 1, worse: 'higher' },
  kid: { min_effect: 0.001, worse: 'higher' },
};

export type Verdict = 'regressed' | 'improved' | 'within noise';

export interface Comparison {
  metric: string;
  prompt: string;
  n: number;
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

const ITEM_METRICS = ['clip_directional', 'hit', 'preserved', 'identity'] as const;
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

function concatFeatures(runs: SideRun[], key: 'original' | 'edited'): Float32Array {
  const out = new Float32Array(runs.reduce((n, r) => n + r.features[key].length, 0));
  let at = 0;
  for (const r of runs) {
    out.set(r.features[key], at);
    at += r.features[key].length;
  }
  return out;
}

/** Rows `idx` of a row-major [n, d] matrix. */
function rows(f: Float32Array, d: number, idx: Int32Array): Float32Array {
  const out = new Float32Array(idx.length * d);
  idx.forEach((k, i) => out.set(f.subarray(k * d, (k + 1) * d), i * d));
  return out;
}

function setMetric(metric: 'fid' | 'kid', edited: Float32Array, original: Float32Array, n: number, d: number): number {
  if (metric === 'fid') return fidFromFeatures(edited, n, original, n, d);
  const all = Int32Array.from({ length: n }, (_, i) => i);
  return mmd2(edited, all, original, all, d);
}

/** Paired bootstrap over item indices of a set-level metric's difference; two-sided bootstrap p. */
function setComparison(metric: 'fid' | 'kid', base: SideRun[], cand: SideRun[], resamples: number, seed: number) {
  const d = base[0].features.dims;
  const bo = concatFeatures(base, 'original');
  const be = concatFeatures(base, 'edited');
  const co = concatFeatures(cand, 'original');
  const ce = concatFeatures(cand, 'edited');
  const n = bo.length / d;
  const b0 = setMetric(metric, be, bo, n, d);
  const c0 = setMetric(metric, ce, co, n, d);
  const rng = new Rng(seed);
  const deltas: number[] = [];
  for (let r = 0; r < resamples; r++) {
    const idx = Int32Array.from({ length: n }, () => rng.int(n));
    deltas.push(setMetric(metric, rows(ce, d, idx), rows(co, d, idx), n, d) - setMetric(metric, rows(be, d, idx), rows(bo, d, idx), n, d));
  }
  deltas.sort((x, y) => x - y);
  const q = (a: number) => deltas[Math.min(deltas.length - 1, Math.max(0, Math.floor(a * deltas.length)))];
  // Two-sided bootstrap p with the +1 correction (never exactly 0 from a finite resample).
  const R = deltas.length;
  const pLow = (deltas.filter((x) => x <= 0).length + 1) / (R + 1);
  const pHigh = (deltas.filter((x) => x >= 0).length + 1) / (R + 1);
  const p = Math.min(1, 2 * Math.min(pLow, pHigh));
  return { baseline: b0, candidate: c0, delta: c0 - b0, lo: q(0.025), hi: q(0.975), p, n, sd: Math.sqrt(mean(deltas.map((x) => (x - mean(deltas)) ** 2))) };
}

function verdictOf(delta: number, lo: number, hi: number, pAdj: number, t: Threshold, alpha: number): Verdict {
  const significant = pAdj < alpha && Math.abs(delta) > t.min_effect;
  if (!significant) return 'within noise';
  const worseSide = t.worse === 'lower' ? hi < 0 : lo > 0;
  const betterSide = t.worse === 'lower' ? lo > 0 : hi < 0;
  return worseSide ? 'regressed' : betterSide ? 'improved' : 'within noise';
}

/**
 * Sides are matched by prompt and by seed rank (the i-th seed of one side with the i-th of the
 * other, so a candidate may run other seeds); items within a run are the same evaluation images
 * in the same order. Every prompt present on both sides is compared.
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
    if (cs.length !== b.length) throw new Error(`prompt ${prompt}: ${b.length} baseline runs but ${cs.length} candidate runs (seeds must pair up)`);
    for (const metric of ITEM_METRICS) {
      const bv = b.flatMap((r) => r.items[metric]);
      const cv = cs.flatMap((r) => r.items[metric]);
      if (bv.length !== cv.length) throw new Error(`prompt ${prompt}: ${metric} has ${bv.length} baseline and ${cv.length} candidate items (not the same images)`);
      const diffs = cv.map((v, i) => v - bv[i]);
      const ci = pairedBootstrap(diffs, { resamples, level: 1 - alpha, seed });
      const w = wilcoxon(diffs);
      out.push({ metric, prompt, n: diffs.length, baseline: mean(bv), candidate: mean(cv), delta: ci.mean, lo: ci.lo, hi: ci.hi, p: w.p, test: `wilcoxon (${w.method})`, mde: minimumDetectableEffect(diffs), threshold: thresholds[metric] });
    }
    for (const metric of ['fid', 'kid'] as const) {
      const r = setComparison(metric, b, cs, Math.min(resamples, 1000), seed);
      // MDE from the bootstrap spread of Δ (no per-item differences for a set metric).
      out.push({ metric, prompt, n: r.n, baseline: r.baseline, candidate: r.candidate, delta: r.delta, lo: r.lo, hi: r.hi, p: r.p, test: 'paired bootstrap', mde: 2.8 * r.sd, threshold: thresholds[metric] });
    }
  }
  const adj = benjaminiHochberg(out.map((x) => x.p));
  return out.map((x, i) => ({ ...x, p_adjusted: adj[i], verdict: verdictOf(x.delta, x.lo, x.hi, adj[i], x.threshold, alpha) }));
}
