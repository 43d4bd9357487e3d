/**
 * Vega-Lite specs for the chart kinds every page may have. Builders take plain rows (no run
 * store types), so tests feed them synthetic data and the report feeds them run results. A
 * method's own charts live with it (src/methods/report.ts).
 */
import type { TopLevelSpec } from 'vega-lite';
import { metricLabel } from '../metrics/registry.js';
import { NUMBER_FORMAT as F, SPEC_BASE as base, SPEC_TOP as top, spansDecades } from '../util/charts.js';

// The cli's `sdd hqs` draws SDD's HQS curves too.
export { hqsCurves, type HqsPoint } from '../methods/sdd_report.js';

const Q = 'quantitative';
const CI_FROM = { field: 'lo', title: '95% CI from', format: F };
const CI_TO = { field: 'hi', title: '95% CI to', format: F };

export interface MetricRow {
  group: string;
  metric: string;
  mean: number;
  lo: number;
  hi: number;
  n: number;
}

/**
 * Bars of a metric per group with confidence-interval error bars (Tables 1–3), each bar labelled
 * with its mean. Both layers carry the metric's human name as the y title: left to Vega-Lite, the
 * error bar's field names (lo/hi) would become the axis title. Values that span decades (FID 2 beside
 * 1140) go on a log scale, whose bars start at the decade below the smallest bound.
 */
export function metricBars(rows: MetricRow[], metric: string, title: string): TopLevelSpec {
  const data = rows.filter((r) => r.metric === metric);
  const log = spansDecades(data.flatMap((r) => [r.mean, r.lo, r.hi]));
  const floor = log ? 10 ** Math.floor(Math.log10(Math.min(...data.map((r) => Math.min(r.lo, r.mean))))) : 0;
  const y = log ? `${metricLabel(metric)} (log scale)` : metricLabel(metric);
  const scale = log ? { type: 'log' } : {};
  const method = { field: 'group', title: 'method' };
  return {
    ...base,
    title,
    data: { values: data },
    encoding: { x: { field: 'group', type: 'nominal', title: 'method', sort: null, axis: { labelAngle: -30 } } },
    layer: [
      {
        mark: 'bar',
        encoding: {
          y: { field: 'mean', type: Q, title: y, scale },
          ...(log ? { y2: { datum: floor } } : {}),
          tooltip: [method, { field: 'mean', title: y, format: F }, CI_FROM, CI_TO, { field: 'n', title: 'prompts' }],
        },
      },
      // A rule, not the errorbar macro: that one names its parts lo/upper_lo in the SVG's aria labels.
      {
        mark: { type: 'rule', strokeWidth: 1.5 },
        encoding: {
          y: { field: 'lo', type: Q, title: y, scale },
          y2: { field: 'hi' },
          tooltip: [method, CI_FROM, CI_TO],
        },
      },
      // The mean over each bar (beside its interval): a value too small to see as a bar still reads.
      {
        mark: { type: 'text', dy: -6, dx: 12, align: 'left', fontSize: 10 },
        encoding: { y: { field: 'mean', type: Q, title: y, scale }, text: { field: 'mean', format: F } },
      },
    ],
  } as TopLevelSpec;
}

export interface MethodTime {
  method: string;
  tau_train: number;
  tau_infer: number;
}

/**
 * τ_total(m) = n·τ_train + m·n·τ_infer per method (Eq. 13–14), with break-even m of Eq. 15 marked.
 * Totals that span decades (a trained method's fixed cost beside per-image ones) go on a log scale,
 * from m = 1.
 */
export function timeVsM(
  times: MethodTime[],
  n: number,
  maxM: number,
  breakEvens: Array<{ pair: string; m: number }>,
  title: string,
): TopLevelSpec {
  const total = (t: MethodTime, m: number) => n * t.tau_train + m * n * t.tau_infer;
  const log = spansDecades(times.flatMap((t) => [total(t, 1), total(t, maxM)]));
  const ms = [...new Set(Array.from({ length: 41 }, (_, i) => Math.max(log ? 1 : 0, Math.round((i / 40) * maxM))))];
  const values = times.flatMap((t) => ms.map((m) => ({ method: t.method, m, total: total(t, m) })));
  const x = { field: 'm', type: Q };
  const yTitle = `total time for n = ${n} prompts (s${log ? ', log scale' : ''}) ↓`;
  return {
    ...base,
    title,
    layer: [
      {
        data: { values },
        mark: 'line',
        encoding: {
          x: { ...x, title: 'images per prompt (m)' },
          y: { field: 'total', type: Q, title: yTitle, ...(log ? { scale: { type: 'log' } } : {}) },
          color: { field: 'method', type: 'nominal', title: 'method' },
          tooltip: [{ field: 'method' }, { field: 'm' }, { field: 'total', title: 'seconds', format: F }],
        },
      },
      {
        data: { values: breakEvens.filter((b) => b.m <= maxM) },
        mark: { type: 'rule', strokeDash: [4, 3], color: '#888' },
        encoding: {
          x,
          tooltip: [
            { field: 'pair', title: 'break-even' },
            { field: 'm', title: 'm', format: F },
          ],
        },
      },
    ],
  } as TopLevelSpec;
}

export interface SourceTotal {
  /** Who measured: the paper, sdd-bench on a backend, PyTorch at a precision. */
  source: string;
  method: string;
  total: number;
}

/** Total seconds per method (Eq. 13–14 at the paper's m, n) side by side per source, log scale. */
export function timeColumnBars(rows: SourceTotal[], title: string): TopLevelSpec {
  return {
    ...base,
    title,
    data: { values: rows },
    mark: 'bar',
    encoding: {
      x: { field: 'method', type: 'nominal', title: null, sort: null },
      xOffset: { field: 'source', type: 'nominal', sort: null },
      y: { field: 'total', type: Q, scale: { type: 'log' }, title: 'total time, m = 100 × n = 10 (s, log) ↓' },
      // A log axis has no zero: bars start at 1 s (every total here is longer).
      y2: { datum: 1 },
      color: { field: 'source', type: 'nominal', sort: null },
      tooltip: [{ field: 'source' }, { field: 'method' }, { field: 'total', title: 'seconds', format: F }],
    },
  } as TopLevelSpec;
}

export interface CurvePoint {
  run: string;
  /** The line's legend entry (row, prompt, seed); the run id without it. */
  series?: string;
  step: number;
  metric: string;
  value: number;
}

/** Per-step training scalars from metrics.jsonl, one line per run (named in the legend), one panel per metric. */
export function trainingCurves(points: CurvePoint[], title: string): TopLevelSpec {
  const values = points.map((p) => ({ ...p, series: p.series ?? p.run }));
  return {
    ...top,
    title,
    data: { values },
    facet: { field: 'metric', type: 'nominal', title: null },
    columns: 3,
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 240,
      height: 140,
      mark: { type: 'line', strokeWidth: 1 },
      encoding: {
        x: { field: 'step', type: Q, title: 'training step' },
        y: { field: 'value', type: Q, title: 'value (panel title)' },
        color: {
          field: 'series',
          type: 'nominal',
          title: 'run',
          legend: { orient: 'bottom', columns: 2, labelLimit: 400 },
        },
        tooltip: [{ field: 'series', title: 'run' }, { field: 'step' }, { field: 'value', format: F }],
      },
    },
    // Vega-Lite's TopLevelSpec union does not narrow layered specs built from parts; render.ts
    // validates each against the schema.
  } as unknown as TopLevelSpec;
}

export interface DeltaRow {
  label: string;
  metric: string;
  delta: number;
  lo: number;
  hi: number;
  verdict: string;
}

/** Verdict colours: red regressed, amber significant but below the threshold, grey within noise, green improved. */
const VERDICTS = {
  domain: ['regressed', 'significant, below threshold', 'within noise', 'improved'],
  range: ['#d62728', '#ff9f1c', '#7f7f7f', '#2ca02c'],
};

/** Forest plot of candidate − baseline per metric and prompt with CIs, coloured by verdict. */
export function deltaForest(rows: DeltaRow[], title: string): TopLevelSpec {
  const label = { field: 'label', type: 'nominal' };
  const delta = { field: 'delta', title: 'Δ', format: F };
  const tooltip = [{ field: 'metric' }, { field: 'label' }, delta, CI_FROM, CI_TO, { field: 'verdict' }];
  return {
    ...top,
    title,
    data: { values: rows },
    facet: { row: { field: 'metric', type: 'nominal', title: null } },
    resolve: { scale: { x: 'independent' } },
    spec: {
      width: 640,
      layer: [
        { mark: { type: 'rule', color: '#999' }, encoding: { x: { datum: 0, type: Q } } },
        {
          mark: { type: 'errorbar', ticks: true },
          encoding: {
            y: { ...label, title: 'prompt' },
            x: { field: 'lo', type: Q, title: 'candidate − baseline (Δ, 95% CI)', axis: { format: '.3~g' } },
            x2: { field: 'hi' },
          },
        },
        {
          mark: { type: 'point', filled: true, size: 60 },
          encoding: {
            y: { ...label, title: 'prompt' },
            x: { field: 'delta', type: Q, title: 'candidate − baseline (Δ, 95% CI)' },
            color: { field: 'verdict', type: 'nominal', scale: VERDICTS, title: 'verdict' },
            tooltip,
          },
        },
      ],
    },
    // Vega-Lite's TopLevelSpec union does not narrow layered specs built from parts; render.ts
    // validates each against the schema.
  } as unknown as TopLevelSpec;
}
