/**
 * Every metric's metadata, in one table: what it is called, the values it can take, which way is
 * better, how report pages put an interval on it and how `sdd regress` compares it. Report
 * columns, chart axes, intervals (src/reports/intervals.ts) and regression thresholds
 * (src/regress/compare.ts) all read this table; a new metric is one entry here (plus the code that
 * computes it). Experiment files name the modules that compute metrics (`metrics: [fid, …]`,
 * torch-fidelity style): an entry's `module`; unknown names are rejected with a suggestion.
 */
import { didYouMean } from '../util/suggest.js';

export type Direction = 'lower' | 'higher';

/** A set-level metric recomputed per bootstrap resample from a run's FID features. */
export type SetMetric = 'fid' | 'kid';

/**
 * How a report page puts an interval on the metric (src/reports/intervals.ts):
 *   items  per-item values in a run's artifacts/items.json under `key` are resampled; `binary`
 *          values are 0/1 outcomes, whose rate gets a Wilson interval when every item agrees
 *   set    the metric is recomputed from artifacts/features.safetensors for each resample
 *   seeds  no per-item values: an interval only over ≥ 2 seeds
 */
export type IntervalKind =
  | { kind: 'items'; key: string; binary?: boolean }
  | { kind: 'set'; set: SetMetric }
  | { kind: 'seeds' };

export interface MetricSpec {
  /** The key in a run's result (result.json `metrics`) and the column name in csv files. */
  key: string;
  /** Human name (table heads, chart axes); the label adds the unit and the better direction. */
  name: string;
  unit?: string;
  /** Which way is better; absent for descriptive values (|S|). */
  better?: Direction;
  /** The values the metric can take: intervals are kept inside. */
  range: [number, number];
  interval: IntervalKind;
  /** The `metrics:` name of the module that computes it; absent for values a method reports itself. */
  module?: string;
  /** Report pages draw a bar chart of it per method. */
  bars?: boolean;
  /** Compared by `sdd regress`: a difference below `minEffect` is never a regression. */
  regress?: { minEffect: number };
}

const INF = Infinity;
const items = (key: string, binary?: true): IntervalKind => ({ kind: 'items', key, ...(binary ? { binary } : {}) });
const seeds: IntervalKind = { kind: 'seeds' };

/** What a metric entry may add to its kind's settings. */
type Extra = Pick<MetricSpec, 'bars' | 'regress'>;

/** A cosine similarity, higher better, from the module of the same name, per item. */
const cosine = (key: string, name: string, extra: Extra = {}): MetricSpec => ({
  key,
  name,
  unit: 'cos',
  better: 'higher',
  range: [-1, 1],
  interval: items(key),
  module: key,
  ...extra,
});

/** A rate of attr_accuracy's per-item 0/1 outcomes `item`. */
const rate = (key: string, name: string, item: string, extra: Extra = {}): MetricSpec => ({
  key,
  name,
  unit: 'fraction',
  better: 'higher',
  range: [0, 1],
  interval: items(item, true),
  module: 'attr_accuracy',
  ...extra,
});

/** A calibrated time from total_time: one value a run, so intervals only over seeds. */
const time = (key: string, name: string, unit: string): MetricSpec => ({
  key,
  name,
  unit,
  better: 'lower',
  range: [0, INF],
  interval: seeds,
  module: 'total_time',
});

/** Report columns follow this order; registerMetric appends. */
const METRIC_TABLE: MetricSpec[] = [
  // SDD's selected set S (Table 3's comparison), from its result's `selection` (Method.reportValues).
  { key: 'selection_size', name: '|S|', unit: 'selected timesteps', range: [0, INF], interval: seeds },
  { key: 'mean_hqs', name: 'mean HQS of S', range: [-1, 1], interval: seeds },
  {
    key: 'fid',
    name: 'FID',
    unit: 'dist²',
    better: 'lower',
    range: [0, INF],
    interval: { kind: 'set', set: 'fid' },
    module: 'fid',
    bars: true,
    regress: { minEffect: 1 },
  },
  // The unbiased MMD² estimate can fall below 0 (the distance itself cannot). Raw MMD² of
  // unnormalised features: on Table 1, KID ≈ 4 × FID (featnet-128), so 4 matches FID's 1.
  {
    key: 'kid',
    name: 'KID',
    unit: 'MMD²',
    better: 'lower',
    range: [-INF, INF],
    interval: { kind: 'set', set: 'kid' },
    module: 'kid',
    regress: { minEffect: 4 },
  },
  cosine('clip_directional', 'directional CLIP', { bars: true, regress: { minEffect: 0.01 } }),
  {
    key: 'clip_score',
    name: 'CLIP score',
    unit: '100·cos',
    better: 'higher',
    range: [0, 100],
    interval: items('clip_score'),
    module: 'clip_score',
  },
  rate('hit_rate', 'hit rate', 'hit', { bars: true, regress: { minEffect: 0.05 } }),
  rate('preservation_rate', 'preservation rate', 'preserved', { regress: { minEffect: 0.02 } }),
  rate('hit_and_preserved', 'hit and preserved', 'hit_and_preserved'),
  cosine('identity', 'identity similarity', { bars: true, regress: { minEffect: 0.01 } }),
  time('tau_train_s', 'τ_train', 's per prompt'),
  time('tau_infer_s', 'τ_infer', 's per image'),
];

/** Every metric, in column order. */
export const METRICS: readonly MetricSpec[] = METRIC_TABLE;

/**
 * Adds a metric that is not built in (a plugin's, a test's dummy): it becomes a report column
 * after the built-in ones and, with `regress`, a comparison of `sdd regress`.
 */
export function registerMetric(spec: MetricSpec): void {
  if (BY_KEY.has(spec.key)) throw new Error(`metric '${spec.key}' is already registered`);
  METRIC_TABLE.push(spec);
  BY_KEY.set(spec.key, spec);
}

const BY_KEY = new Map(METRIC_TABLE.map((m) => [m.key, m]));

/** The entry of a result key, or undefined for values the table does not know. */
export function metricSpec(key: string): MetricSpec | undefined {
  return BY_KEY.get(key);
}

/** Metric keys in table order. */
export function metricKeys(): string[] {
  return METRICS.map((m) => m.key);
}

/** The values a metric can take; unknown keys are unbounded. */
export function metricRange(key: string): [number, number] {
  return BY_KEY.get(key)?.range ?? [-INF, INF];
}

/** "FID ↓", "τ_train (s per prompt) ↓": the name with its unit and better direction; unknown keys in words. */
export function metricLabel(key: string): string {
  const m = BY_KEY.get(key);
  if (!m) return key.replace(/_/g, ' ');
  const arrow = m.better === 'lower' ? ' ↓' : m.better === 'higher' ? ' ↑' : '';
  return `${m.name}${m.unit ? ` (${m.unit})` : ''}${arrow}`;
}

/** A module that experiment files name under `metrics:`, with the result keys it computes. */
export interface MetricModule {
  name: string;
  keys: string[];
  better: Direction;
}

/** Module names in table order (the order `sdd schema` lists them). */
export function metricNames(): string[] {
  return [...new Set(METRICS.flatMap((m) => (m.module ? [m.module] : [])))];
}

export function getMetric(name: string): MetricModule {
  const specs = METRICS.filter((m) => m.module === name);
  if (!specs.length) throw new RangeError(`unknown metric '${name}'${didYouMean(name, metricNames())}`);
  return { name, keys: specs.map((m) => m.key), better: specs[0].better ?? 'higher' };
}
