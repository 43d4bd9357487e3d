/**
 * The tables of an experiment page and their csv/json files: per method (the intervals of
 * intervals.ts, and what each is), per prompt, per run and per prompt group (Table 2).
 */
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { mean } from 'simple-statistics';
import { metricLabel } from '../metrics/registry.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { fmt3, type Table } from './html.js';
import { groupLabel, num, resultValues, type GroupRun, type PageContext } from './groups.js';
import { BOOT_SEED, FID_RESAMPLES, LEVEL, promptSummary, RESAMPLES, type Summary } from './intervals.js';

export type Cell = string | number | null;

/** "mean [lo, hi]" in the page's one number format (3 significant digits). */
export function withCi(s: Summary | null): string | null {
  if (!s) return null;
  return s.lo === null || s.hi === null ? fmt3(s.mean) : `${fmt3(s.mean)} [${fmt3(s.lo)}, ${fmt3(s.hi)}]`;
}

/** A metric's csv columns: the mean and the interval's bounds. */
const ciColumns = (metrics: string[]) => metrics.flatMap((m) => [m, `${m}_ci95_lo`, `${m}_ci95_hi`]);
export const ciCells = (s: Summary | null): Cell[] => [s?.mean ?? null, s?.lo ?? null, s?.hi ?? null];

function writeCsv(ctx: PageContext, file: string, rows: Cell[][]): void {
  writeFileAtomic(join(ctx.dir, file), stringify(rows));
}

/**
 * Which interval each metric of a row has, e.g. "95% t over 3 seeds [fid, hit_rate]; none: …
 * [tau_train_s]": metrics of one row can have different units (τ has no per-item values).
 */
function intervalKinds(metrics: string[], summaries: Array<Summary | null>): string {
  const by = new Map<string, string[]>();
  summaries.forEach((s, i) => {
    if (s) by.set(s.interval, [...(by.get(s.interval) ?? []), metrics[i]]);
  });
  return [...by].map(([how, ms]) => `${how} [${ms.join(', ')}]`).join('; ');
}

export const INTERVAL_NOTE =
  `Intervals are ${LEVEL * 100}% and never leave the metric's range. Method rows: the mean over prompts of the ` +
  'per-prompt means; percentile bootstrap within each prompt over its evaluation items (and over seeds when ' +
  `there are ≥ 2), prompts held fixed, ${RESAMPLES} resamples (FID: ${FID_RESAMPLES}; FID and KID recomputed ` +
  "per resample from the runs' FID features and shifted by the bootstrap's bias estimate), seed " +
  `${BOOT_SEED}. Per-prompt rows: a Student-t interval over seeds when there are ≥ 2 (clipped to the range, and ` +
  'marked so), otherwise the same item bootstrap. τ and |S| have no per-item values: no interval from one seed.';

/**
 * Main table: one row per group (method), the mean over prompts with the stratified bootstrap.
 * CSV: raw numbers, the interval's bounds in their own columns and its unit in `interval`.
 * Returns the table and the rows' records for results.json.
 */
export function methodTable(ctx: PageContext): { table: Table; json: Array<Record<string, unknown>> } {
  const { metrics } = ctx;
  const title = `Results per method: mean over prompts [${LEVEL * 100}% CI]`;
  const columns = ['method', ...metrics.map(metricLabel), 'runs'];
  const table: Table = { title, columns, rows: [], csv: 'results.csv', note: INTERVAL_NOTE };
  const csvRows: Cell[][] = [];
  const json: Array<Record<string, unknown>> = [];
  for (const g of ctx.groups) {
    const finished = g.runs.filter((r) => r.status === 'finished').length;
    const done = `${finished}/${ctx.planned.filter((p) => groupLabel(p) === g.label).length}`;
    const ss = metrics.map((m) => ctx.sums.method(g, m));
    table.rows.push([g.label, ...ss.map(withCi), done]);
    csvRows.push([g.label, ...ss.flatMap(ciCells), intervalKinds(metrics, ss), done]);
    const runs = g.runs.map((r) => r.id);
    const values = Object.fromEntries(metrics.map((m, k) => [m, ss[k]]));
    json.push({ group: g.label, method: g.method, runs, interval_level: LEVEL, ...values });
  }
  const csv = [['method', ...ciColumns(metrics), 'interval', 'runs'], ...csvRows];
  writeCsv(ctx, 'results.csv', csv);
  // A combined page's table also under the page's own name (make table1 → reports/table1/table1.csv).
  if (ctx.combined) writeCsv(ctx, `${ctx.name}.csv`, csv);
  return { table, json };
}

/** Per prompt: one row per (method, prompt), with the per-prompt interval and its unit. */
export function promptTable(ctx: PageContext): { table: Table; json: Array<Record<string, unknown>> } {
  const { metrics } = ctx;
  const title = `Per prompt: mean over seeds [${LEVEL * 100}% CI]`;
  const columns = ['method', 'prompt', 'seeds', ...metrics.map(metricLabel), 'interval'];
  const table: Table = { title, columns, rows: [], csv: 'prompts.csv' };
  const csvRows: Cell[][] = [];
  const json: Array<Record<string, unknown>> = [];
  for (const g of ctx.groups) {
    ctx.sums.prompts(g).forEach(([prompt, runs], i) => {
      const ss = metrics.map((m) => promptSummary(runs, m, BOOT_SEED + i));
      const kinds = intervalKinds(metrics, ss);
      table.rows.push([g.label, prompt, runs.length, ...ss.map(withCi), kinds]);
      csvRows.push([g.label, prompt, runs.length, ...ss.flatMap(ciCells), kinds]);
      const seeds = runs.map((r) => r.seed);
      json.push({ group: g.label, prompt, seeds, ...Object.fromEntries(metrics.map((m, k) => [m, ss[k]])) });
    });
  }
  writeCsv(ctx, 'prompts.csv', [['method', 'prompt', 'seeds', ...ciColumns(metrics), 'interval'], ...csvRows]);
  return { table, json };
}

/** results.json: the method and per-prompt records, and what their intervals are. */
export function writeResultsJson(ctx: PageContext, methods: unknown[], prompts: unknown[]): void {
  writeJsonAtomic(join(ctx.dir, 'results.json'), { interval_note: INTERVAL_NOTE, methods, prompts });
}

/** Every run, its own values (no interval: one run). */
export function runsTable(ctx: PageContext): Table {
  const { metrics } = ctx;
  const rows = ctx.finished.map(({ g, r }): Cell[] => {
    const v = resultValues(r);
    return [g.label, String(v.prompt ?? ''), r.config!.seed, r.id, ...metrics.map((m) => num(v[m]))];
  });
  const head = ['method', 'prompt', 'seed', 'run'];
  writeCsv(ctx, 'runs.csv', [[...head, ...metrics], ...rows]);
  return { title: 'Per run', columns: [...head, ...metrics.map(metricLabel)], rows, csv: 'runs.csv' };
}

/** Per prompt group (Table 2: where CLIP guidance fails), the mean over the group's runs; null without groups. */
export function promptGroupTable(ctx: PageContext): Table | null {
  const byGroup = new Map<string, GroupRun[]>();
  for (const x of ctx.finished) {
    const pg = resultValues(x.r).prompt_group;
    if (typeof pg !== 'string') continue;
    const key = `${x.g.label}\u0000${pg}`;
    byGroup.set(key, [...(byGroup.get(key) ?? []), x]);
  }
  if (!byGroup.size) return null;
  const meanOf = (xs: GroupRun[], m: string) => {
    const v = xs.map(({ r }) => num(resultValues(r)[m])).filter((x): x is number => x !== null);
    return v.length ? mean(v) : null;
  };
  const rows = [...byGroup.entries()].map(([key, xs]): Cell[] => {
    const [label, pg] = key.split('\u0000');
    return [label, pg, xs.length, ...ctx.metrics.map((m) => meanOf(xs, m))];
  });
  writeCsv(ctx, 'groups.csv', [['method', 'prompt group', 'runs', ...ctx.metrics], ...rows]);
  const columns = ['method', 'prompt group', 'runs', ...ctx.metrics.map(metricLabel)];
  return { title: 'Per prompt group (mean over prompts and seeds)', columns, rows, csv: 'groups.csv' };
}
