/**
 * The tables of an experiment page and their csv/json files: per method (the intervals of
 * intervals.ts, and what each is), per prompt, per run and per prompt group (Table 2).
 */
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { mean } from 'simple-statistics';
import { metricLabel } from '../metrics/registry.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import type { Cell, Num, Table } from './html.js';
import { num, resultValues, type Group, type GroupRun, type PageContext } from './groups.js';
import { BOOT_SEED, FID_RESAMPLES, LEVEL, promptSummary, RESAMPLES, type Summary } from './intervals.js';

export type { Cell } from './html.js';

/** A summary as a table cell: its mean and interval, formatted by the column (html.ts). */
export function withCi(s: Summary | null): Num | null {
  return s ? { v: s.mean, lo: s.lo, hi: s.hi } : null;
}

/** One value as a metric cell (no interval). */
const metricCell = (v: unknown): Num | null => {
  const x = num(v);
  return x === null ? null : { v: x };
};

/** Hit rate at most this and preservation at least NO_EDIT_PRESERVED: the edits changed nothing. */
const NO_EDIT_HIT = 0.005;
const NO_EDIT_PRESERVED = 0.95;
const NO_EDIT = 'no edit';
const NO_EDIT_NOTE =
  `⚠ ${NO_EDIT}: the row's edits did not change the images' attributes (hit rate ≤ ${NO_EDIT_HIT}, preservation ≥ ` +
  `${NO_EDIT_PRESERVED}): its FID, KID, identity and time are those of leaving the images alone, not of an edit.`;

/** The "no edit" flag of a row from its hit and preservation rates (null when it did edit or is not measured). */
export function noEditFlag(hit: number | null | undefined, preserved: number | null | undefined): string | null {
  if (hit == null || preserved == null) return null;
  return hit <= NO_EDIT_HIT && preserved >= NO_EDIT_PRESERVED ? NO_EDIT : null;
}

/** A method row's flag. */
export function groupFlag(ctx: PageContext, g: Group): string | null {
  return noEditFlag(ctx.sums.method(g, 'hit_rate')?.mean, ctx.sums.method(g, 'preservation_rate')?.mean);
}

/** KID beside a table that shows it: why it can be negative. */
const KID_NOTE =
  'KID is the unbiased estimate of the squared MMD between edited and original features (cubic kernel): it ' +
  'can be negative when the two sets are closer than the estimate can resolve (the distance itself cannot). ' +
  'Read values at or below 0 as "no measurable difference", and compare rows by how far above 0 they are.';

/** The notes a table of these metrics needs, and the flags' explanation when a row is flagged. */
export function metricNotes(metrics: string[], flags: Array<string | null>): string[] {
  return [...(flags.some(Boolean) ? [NO_EDIT_NOTE] : []), ...(metrics.includes('kid') ? [KID_NOTE] : [])];
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

const INTERVAL_NOTE =
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
  const table: Table = { title, columns, rows: [], csv: 'results.csv', note: INTERVAL_NOTE, flags: [] };
  const csvRows: Cell[][] = [];
  const json: Array<Record<string, unknown>> = [];
  for (const g of ctx.groups) {
    const finished = g.runs.filter((r) => r.status === 'finished').length;
    const done = `${finished}/${g.planned}`;
    const ss = metrics.map((m) => ctx.sums.method(g, m));
    const flag = groupFlag(ctx, g);
    table.rows.push([g.label, ...ss.map(withCi), done]);
    table.flags!.push(flag);
    csvRows.push([g.label, ...ss.flatMap(ciCells), intervalKinds(metrics, ss), done, flag ?? '']);
    const runs = g.runs.map((r) => r.id);
    const values = Object.fromEntries(metrics.map((m, k) => [m, ss[k]]));
    json.push({ group: g.label, method: g.method, runs, interval_level: LEVEL, ...values, ...(flag ? { flag } : {}) });
  }
  table.notes = metricNotes(metrics, table.flags!);
  const csv = [['method', ...ciColumns(metrics), 'interval', 'runs', 'flag'], ...csvRows];
  writeCsv(ctx, 'results.csv', csv);
  // A combined page's table also under the page's own name (make table1 → reports/table1/table1.csv).
  if (ctx.combined) writeCsv(ctx, `${ctx.name}.csv`, csv);
  return { table, json };
}

/** Per prompt: one row per (method, prompt), with the per-prompt interval and its unit. */
export function promptTable(ctx: PageContext): { table: Table; json: Array<Record<string, unknown>> } {
  const { metrics } = ctx;
  const title = `Per prompt: mean over seeds [${LEVEL * 100}% CI]`;
  const columns = ['method', 'prompt', 'seeds', ...metrics.map(metricLabel)];
  const table: Table = { title, columns, rows: [], csv: 'prompts.csv', flags: [] };
  const csvRows: Cell[][] = [];
  const json: Array<Record<string, unknown>> = [];
  for (const g of ctx.groups) {
    ctx.sums.prompts(g).forEach(([prompt, runs], i) => {
      const ss = metrics.map((m) => promptSummary(runs, m, BOOT_SEED + i));
      const kinds = intervalKinds(metrics, ss);
      const at = (m: string) => ss[metrics.indexOf(m)]?.mean;
      table.rows.push([g.label, prompt, runs.length, ...ss.map(withCi)]);
      table.flags!.push(noEditFlag(at('hit_rate'), at('preservation_rate')));
      csvRows.push([g.label, prompt, runs.length, ...ss.flatMap(ciCells), kinds]);
      const seeds = runs.map((r) => r.seed);
      json.push({ group: g.label, prompt, seeds, ...Object.fromEntries(metrics.map((m, k) => [m, ss[k]])) });
    });
  }
  // What the intervals are: said once under the table (prompts.csv has each row's), not a wide column.
  table.note =
    'Per prompt: a Student-t interval over seeds when there are ≥ 2 (clipped to the range), otherwise the ' +
    "bootstrap over the run's evaluation images (FID, KID recomputed per resample); prompts.csv names each row's.";
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
  const cells = rows.map((r) => [...r.slice(0, head.length), ...r.slice(head.length).map(metricCell)]);
  const flags = ctx.finished.map(({ r }) =>
    noEditFlag(num(resultValues(r).hit_rate), num(resultValues(r).preservation_rate)),
  );
  return { title: 'Per run', columns: [...head, ...metrics.map(metricLabel)], rows: cells, csv: 'runs.csv', flags };
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
  const cells = rows.map((r) => [...r.slice(0, 3), ...r.slice(3).map(metricCell)]);
  const at = (r: Cell[], m: string) => num(r[3 + ctx.metrics.indexOf(m)]);
  const flags = rows.map((r) => noEditFlag(at(r, 'hit_rate'), at(r, 'preservation_rate')));
  const title = 'Per prompt group (mean over prompts and seeds)';
  return { title, columns, rows: cells, csv: 'groups.csv', flags };
}
