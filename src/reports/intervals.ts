/**
 * The intervals on report pages. Units, from the finest:
 *   per prompt (one method, one prompt): the mean over seeds. With ≥ 2 seeds, a 95% Student-t
 *     interval over the seeds' values (df = seeds − 1), clipped to the metric's range (and marked
 *     so); with one seed, the 95% percentile bootstrap over the run's evaluation items — per-item
 *     values from artifacts/items.json, FID and KID recomputed per resample from the run's FID
 *     features (artifacts/features.safetensors), edited and original image of an item together.
 *   per method (the table row): the mean over prompts of the per-prompt means, with a 95%
 *     percentile bootstrap stratified by prompt: within every prompt the items are resampled (one
 *     draw shared by all of its seeds: the same images) and, with ≥ 2 seeds, the seeds too. The
 *     prompts are the benchmark's fixed set, not a sample, so they are not resampled.
 * FID and KID replicates are shifted by the bootstrap's bias estimate (see promptBoot).
 * Resamples: 1000 (item means, KID), 200 for FID (each recomputes an m × m spectrum); seeded,
 * the prompt's stream seed = BOOT_SEED + its index in sorted order. Percentiles of statistics
 * that respect the range stay inside it. A metric without per-item values (τ, |S|) has an
 * interval only from ≥ 2 seeds.
 */
import { mean, sampleStandardDeviation } from 'simple-statistics';
import { percentileInterval, seedItemBootstrap, type StratumDraw } from '../regress/stats.js';
import { metricRange, metricSpec, type SetMetric } from '../metrics/registry.js';
import type { RunData } from './run_data.js';

export const BOOT_SEED = 0;
export const RESAMPLES = 1000;
export const FID_RESAMPLES = 200;
export const LEVEL = 0.95;

const clamp = (v: number, [a, b]: [number, number]) => Math.min(b, Math.max(a, v));

/** 97.5% quantiles of Student's t, df = 1..30 (standard table values). */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11,
  2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** Mean and 95% Student-t interval (unclipped). */
export function meanCi(values: number[]): { mean: number; lo: number; hi: number; n: number } {
  const m = mean(values);
  if (values.length < 2) return { mean: m, lo: m, hi: m, n: values.length };
  const half = (T975[values.length - 2] ?? 1.96) * (sampleStandardDeviation(values) / Math.sqrt(values.length));
  return { mean: m, lo: m - half, hi: m + half, n: values.length };
}

export interface Summary {
  mean: number;
  lo: number | null;
  hi: number | null;
  /** The interval's unit and method, in words (shown on the page and written to csv/json). */
  interval: string;
  prompts: number;
  seeds: number;
  items: number | null;
  resamples: number | null;
  clipped: boolean;
}

/** A prompt's bootstrap: its estimate and the resampled values, in draw order. */
interface PromptBoot {
  estimate: number;
  replicates: Float64Array | null;
  items: number | null;
  seeds: number;
}

/** How a metric's items are resampled: a set-level metric recomputed, or per-item values averaged. */
function itemSource(metric: string): { set?: SetMetric; item?: string; binary: boolean } {
  const i = metricSpec(metric)?.interval;
  if (i?.kind === 'set') return { set: i.set, binary: false };
  if (i?.kind === 'items') return { item: i.key, binary: i.binary === true };
  return { binary: false };
}

function resamplesOf(metric: string): number {
  return itemSource(metric).set === 'fid' ? FID_RESAMPLES : RESAMPLES;
}

type ItemStat = (seed: number, idx: Int32Array) => number;

/**
 * The metric of seed s's run on items idx, and the item count, or null when the runs cannot be
 * resampled by item (no features or per-item values, or different counts).
 */
function itemStat(withValue: RunData[], metric: string): { items: number; stat: ItemStat } | null {
  const source = itemSource(metric);
  if (source.set) {
    const set = source.set;
    const n = withValue.map((r) => r.setItems(set));
    if (!n.every((x) => x !== null && x === n[0] && x >= 2)) return null;
    return { items: n[0]!, stat: (s, idx) => withValue[s].setValue(set, idx) };
  }
  if (!source.item) return null;
  const key = source.item;
  const per = withValue.map((r) => r.items(key));
  if (!per.every((v) => v !== null && v.length === per[0]!.length && v.length > 0)) return null;
  const stat: ItemStat = (s, idx) => {
    let sum = 0;
    for (const k of idx) sum += per[s]![k];
    return sum / idx.length;
  };
  return { items: per[0]!.length, stat };
}

/**
 * The (seed, item) bootstrap of one prompt's runs: replicates are the mean over drawn seeds of
 * the metric on the drawn items. Without per-item values, only seeds move (items count 0); with
 * one seed and none, there is nothing to resample (replicates null).
 */
function promptBoot(runs: RunData[], metric: string, streamSeed: number): PromptBoot | null {
  const withValue = runs.filter((r) => r.value(metric) !== null);
  if (!withValue.length) return null;
  const range = metricRange(metric);
  const estimate = mean(withValue.map((r) => r.value(metric)!));
  const seeds = withValue.length;
  const byItem = itemStat(withValue, metric);
  const items = byItem?.items ?? null;
  if (!byItem && seeds < 2) return { estimate, replicates: null, items, seeds };
  const f: ItemStat = byItem?.stat ?? ((s) => withValue[s].value(metric)!);
  // Each replicate is clamped to the range: the plain statistic can leave it only by round-off
  // (FID) or by definition (CLIP score is max(0, mean) of the per-item scores).
  const replicate = (d: StratumDraw) => clamp(mean(Array.from(d.seeds, (s) => f(s, d.items))), range);
  const opts = { resamples: resamplesOf(metric), level: LEVEL, seed: streamSeed, observed: estimate };
  const r = seedItemBootstrap({ seeds, items: byItem ? byItem.items : 0 }, replicate, opts);
  if (!itemSource(metric).set || !byItem) return { estimate, replicates: r.replicates, items, seeds };
  // FID and KID of a resample are biased upwards: a resample repeats items (≈ 63% distinct), and
  // both statistics grow as the distinct sample shrinks (on the benchmark's runs the replicates sit
  // ~10% above the estimate; a plain percentile interval can miss the estimate). The replicates are
  // shifted by the bootstrap's bias estimate, mean(replicates) − estimate, and clamped to the range.
  const bias = mean(Array.from(r.replicates)) - estimate;
  return { estimate, replicates: r.replicates.map((v) => clamp(v - bias, range)), items, seeds };
}

/** 95% Wilson score interval of k successes in n trials. */
export function wilson(k: number, n: number): { lo: number; hi: number } {
  const z = 1.959963984540054;
  const p = k / n;
  const d = 1 + (z * z) / n;
  const c = (p + (z * z) / (2 * n)) / d;
  const h = (z / d) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  return { lo: Math.max(0, c - h), hi: Math.min(1, c + h) };
}

/**
 * A percentile bootstrap of a rate whose items all agree has zero width (every resample is the
 * same), which no one would sign: such a rate gets the Wilson score interval of its pooled items.
 */
function degenerateRate(
  metric: string,
  ci: { lo: number; hi: number },
  rate: number,
  trials: number | null,
): { lo: number; hi: number; note: string } | null {
  // Per-item values that are 0/1 outcomes: a rate's interval cannot be [0, 0] because no item differed.
  if (!itemSource(metric).binary || ci.hi > ci.lo || !trials) return null;
  const every = rate >= 0.5 ? 'hit' : 'missed';
  const note = `95% Wilson score over ${trials} pooled items (every item ${every}: the bootstrap has zero width)`;
  return { ...wilson(Math.round(rate * trials), trials), note };
}

const fmtRange = ([a, b]: [number, number]) => `[${a === -Infinity ? '−∞' : a}, ${b === Infinity ? '∞' : b}]`;

/** A per-prompt t interval over ≥ 2 seeds, clipped to the metric's range. */
function seedsSummary(values: number[], range: [number, number]): Summary {
  const t = meanCi(values);
  const [lo, hi] = [clamp(t.lo, range), clamp(t.hi, range)];
  const clipped = lo !== t.lo || hi !== t.hi;
  const interval = `95% t over ${values.length} seeds${clipped ? `, clipped to ${fmtRange(range)}` : ''}`;
  return { mean: t.mean, lo, hi, interval, prompts: 1, seeds: values.length, items: null, resamples: null, clipped };
}

/** Per prompt: t over seeds (clipped) with ≥ 2 seeds, else the item bootstrap, else none. */
export function promptSummary(runs: RunData[], metric: string, streamSeed: number): Summary | null {
  const values = runs.map((r) => r.value(metric)).filter((v): v is number => v !== null);
  if (!values.length) return null;
  if (values.length >= 2) return seedsSummary(values, metricRange(metric));
  const one = { prompts: 1, seeds: 1 };
  const noResamples = { resamples: null, clipped: false };
  const b = promptBoot(runs, metric, streamSeed);
  if (!b?.replicates) {
    const interval = 'none: one seed, no per-item values';
    return { mean: values[0], lo: null, hi: null, interval, ...one, items: null, resamples: null, clipped: false };
  }
  const ci = percentileInterval(b.replicates, LEVEL);
  const w = degenerateRate(metric, ci, b.estimate, b.items);
  if (w) return { mean: b.estimate, lo: w.lo, hi: w.hi, interval: w.note, ...one, items: b.items, ...noResamples };
  const R = b.replicates.length;
  const interval = `95% bootstrap over ${b.items} items, ${R} resamples`;
  return { mean: b.estimate, lo: ci.lo, hi: ci.hi, interval, ...one, items: b.items, resamples: R, clipped: false };
}

/** The mean over prompts of their replicates, resample by resample. */
function averageReplicates(boots: PromptBoot[]): Float64Array {
  const R = boots[0].replicates!.length;
  const avg = new Float64Array(R);
  for (const b of boots) for (let r = 0; r < R; r++) avg[r] += b.replicates![r] / boots.length;
  return avg;
}

/** Per method: the mean over prompts, bootstrap stratified by prompt over (seed, item). */
export function methodSummary(byPrompt: Array<[string, RunData[]]>, metric: string): Summary | null {
  const sorted = [...byPrompt].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const boots = sorted.map(([, runs], i) => promptBoot(runs, metric, BOOT_SEED + i)).filter((b) => b !== null);
  if (!boots.length) return null;
  const est = mean(boots.map((b) => b.estimate));
  const seeds = Math.max(...boots.map((b) => b.seeds));
  const items = boots.every((b) => b.items !== null) ? boots[0].items : null;
  const base = { mean: est, prompts: boots.length, seeds, items, clipped: false };
  // A prompt with nothing to resample would make the interval look tighter than it is: no interval.
  if (boots.some((b) => !b.replicates)) {
    const interval = 'none: one seed and no per-item values for some prompt';
    return { ...base, lo: null, hi: null, interval, resamples: null };
  }
  const avg = averageReplicates(boots);
  const ci = percentileInterval(avg, LEVEL);
  const trials = boots.every((b) => b.items !== null) ? boots.reduce((a, b) => a + b.items! * b.seeds, 0) : null;
  const pooled = trials ? boots.reduce((a, b) => a + b.estimate * b.items! * b.seeds, 0) / trials : est;
  const w = degenerateRate(metric, ci, pooled, trials);
  const over = `mean over ${boots.length} prompt${boots.length > 1 ? 's' : ''}`;
  if (w) return { ...base, lo: w.lo, hi: w.hi, interval: `${over}; ${w.note}`, resamples: null };
  const what = items !== null ? `(prompt, item) pairs${seeds > 1 ? ' and seeds' : ''}` : 'seeds';
  const interval = `${over}; 95% bootstrap over ${what} within each prompt, ${avg.length} resamples, seed ${BOOT_SEED}`;
  return { ...base, lo: ci.lo, hi: ci.hi, interval, resamples: avg.length };
}
