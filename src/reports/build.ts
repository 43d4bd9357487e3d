/**
 * `sdd report`: one page per experiment (its planned runs, read from the store) and an index.
 * Groups are runs sharing everything but prompt and seed (a method row). A group's metric is the
 * mean over prompts of the per-prompt means over seeds; intervals.ts says which 95% interval each
 * level gets (per prompt: t over seeds or the item bootstrap; per method: a bootstrap stratified
 * by prompt), and every table says it too.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join, relative, resolve } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import type { TopLevelSpec } from 'vega-lite';
import { mean } from 'simple-statistics';
import type { LoadOptions } from '../experiments/load.js';
import { planAll } from '../experiments/plan.js';
import type { PlannedRun } from '../experiments/expand.js';
import type { RunStore, RunSummary } from '../runs/store.js';
import { gitInfo, PROJECT_ROOT } from '../util/env.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { breakEven, totalTime } from '../metrics/total_time.js';
import { hqsCurves, metricBars, timeVsM, tradeoff, trainingCurves, type CurvePoint, type HqsPoint, type MetricRow } from './charts.js';
import { minMax } from '../sdd/hqs.js';
import { escapeHtml, figureHtml, fmt3, page, tableHtml, type Figure, type Table } from './html.js';
import { BOOT_SEED, FID_RESAMPLES, LEVEL, metricLabel, methodSummary, promptSummary, RESAMPLES, RunData, type Summary } from './intervals.js';
import { renderSvg, svgToPng, validateSpec } from './render.js';
import { comparisonGrid } from './compare_grid.js';

const require = createRequire(import.meta.url);

export const TABLE_METRICS = ['selection_size', 'mean_hqs', 'fid', 'kid', 'clip_directional', 'clip_score', 'hit_rate', 'preservation_rate', 'hit_and_preserved', 'identity', 'tau_train_s', 'tau_infer_s'];
const BAR_METRICS = ['fid', 'clip_directional', 'hit_rate', 'identity'];

export { meanCi } from './intervals.js';

/** Table 1's time column: Eq. 13–14 at the paper's m = 100 images for each of n = 10 prompts. */
const TABLE1_M = 100;
const TABLE1_N = 10;

interface Group {
  label: string;
  method: string;
  runs: RunSummary[];
}

export function groupLabel(r: PlannedRun): string {
  const extra = Object.entries(r.config.point)
    .filter(([k]) => k !== 'method.params.prompt' && k !== 'method')
    .map(([k, v]) => `${k.replace(/^method\.params\./, '')}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return [r.config.method.name, ...extra].join(' ');
}

function groupsOf(planned: PlannedRun[], store: RunStore): Group[] {
  const map = new Map<string, Group>();
  for (const r of planned) {
    const label = groupLabel(r);
    const g = map.get(label) ?? { label, method: r.config.method.name, runs: [] };
    if (store.ids().includes(r.id)) g.runs.push(store.summary(r.id));
    map.set(label, g);
  }
  return [...map.values()];
}

/** A finished run's metrics (result.json keeps them under `metrics`). */
const res = (r: RunSummary): Record<string, unknown> => {
  const m = (r.result?.metrics as Record<string, unknown> | undefined) ?? {};
  // SDD's selected set S as two table columns (|S|, mean HQS of S: Table 3's comparison).
  const sel = m.selection as { size?: unknown; mean_hqs?: unknown } | undefined;
  return sel ? { ...m, selection_size: sel.size, mean_hqs: sel.mean_hqs } : m;
};
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** A group's finished runs by prompt, sorted (the bootstrap's stream of a prompt is its index). */
function promptRuns(g: Group): Array<[string, RunData[]]> {
  const map = new Map<string, RunData[]>();
  for (const r of g.runs.filter((x) => x.status === 'finished')) {
    const m = res(r);
    const prompt = String(m.prompt ?? '');
    map.set(prompt, [...(map.get(prompt) ?? []), new RunData(r.id, r.dir, prompt, r.config!.seed, m)]);
  }
  return [...map.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** Method-level and per-prompt summaries, computed once per (group, metric): FID's bootstrap is not free. */
class Summaries {
  private readonly runs = new Map<Group, Array<[string, RunData[]]>>();
  private readonly cache = new Map<string, Summary | null>();
  private readonly ids = new Map<Group, number>();

  private runsOf(g: Group) {
    if (!this.runs.has(g)) {
      this.runs.set(g, promptRuns(g));
      this.ids.set(g, this.ids.size);
    }
    return this.runs.get(g)!;
  }

  method(g: Group, metric: string): Summary | null {
    const byPrompt = this.runsOf(g);
    const key = `${this.ids.get(g)}\u0000${metric}`;
    if (!this.cache.has(key)) this.cache.set(key, methodSummary(byPrompt, metric));
    return this.cache.get(key)!;
  }

  prompts(g: Group): Array<[string, RunData[]]> {
    return this.runsOf(g);
  }
}

/** "mean [lo, hi]" in the page's one number format (3 significant digits). */
function withCi(s: Summary | null): string | null {
  if (!s) return null;
  return s.lo === null || s.hi === null ? fmt3(s.mean) : `${fmt3(s.mean)} [${fmt3(s.lo)}, ${fmt3(s.hi)}]`;
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

const INTERVAL_NOTE = `Intervals are ${LEVEL * 100}% and never leave the metric's range. Method rows: the mean over prompts of the per-prompt means; percentile bootstrap within each prompt over its evaluation items (and over seeds when there are ≥ 2), prompts held fixed, ${RESAMPLES} resamples (FID: ${FID_RESAMPLES}; FID and KID recomputed per resample from the runs' FID features and shifted by the bootstrap's bias estimate), seed ${BOOT_SEED}. Per-prompt rows: a Student-t interval over seeds when there are ≥ 2 (clipped to the range, and marked so), otherwise the same item bootstrap. τ and |S| have no per-item values: no interval from one seed.`;

export async function figure(dir: string, id: string, title: string, spec: TopLevelSpec): Promise<Figure> {
  const problems = validateSpec(spec);
  if (problems.length) throw new Error(`chart ${id}: invalid Vega-Lite spec: ${problems.slice(0, 3).join('; ')}`);
  const svg = await renderSvg(spec);
  mkdirSync(join(dir, 'charts'), { recursive: true });
  writeJsonAtomic(join(dir, 'charts', `${id}.vl.json`), spec);
  writeFileAtomic(join(dir, 'charts', `${id}.svg`), svg);
  writeFileAtomic(join(dir, 'charts', `${id}.png`), svgToPng(svg));
  return { id, title, svg, spec, files: { vl: `charts/${id}.vl.json`, svg: `charts/${id}.svg`, png: `charts/${id}.png` } };
}

function readCsv(path: string): Array<Record<string, number>> {
  const [head, ...lines] = readFileSync(path, 'utf-8').trim().split('\n');
  const cols = head.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], Number(v)])));
}

/** The training-curve panel of step durations. */
export const STEP_SECONDS = 'seconds per step';

/** Times (s since the epoch) at which the run's process started: log.txt's "<ISO time> start …" lines. */
function processStarts(dir: string): number[] {
  const path = join(dir, 'log.txt');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf-8')
    .split('\n')
    .map((l) => /^(\S+) start /.exec(l)?.[1])
    .filter((t): t is string => t !== undefined)
    .map((t) => Date.parse(t) / 1000)
    .filter(Number.isFinite);
}

/**
 * Per-step scalars from metrics.jsonl, plus each step's duration. Rows carry the wall-clock `time`
 * they were written at (exec/context.ts), which is no curve to plot; the duration of step k is
 * time(k) − time(k − 1) divided by the steps between them, or a row's own `step_s`. A step whose
 * interval contains a process start (a resume: log.txt's "start" line) is left out, as is the
 * first step (nothing before it). `t` (the sampled timestep) is noise, not a curve.
 */
export function metricLines(run: { id: string; dir: string }): CurvePoint[] {
  const path = join(run.dir, 'metrics.jsonl');
  if (!existsSync(path)) return [];
  const out: CurvePoint[] = [];
  const rows: Array<Record<string, number>> = [];
  for (const line of readFileSync(path, 'utf-8').split('\n')) {
    if (!line.trim()) continue;
    try {
      rows.push(JSON.parse(line) as Record<string, number>);
    } catch {
      // a torn last line of a running run
    }
  }
  // Panel titles are words: a raw key such as id_loss reads like an interval bound (fid_lo).
  for (const row of rows) for (const [k, v] of Object.entries(row)) if (!['step', 't', 'time', 'step_s'].includes(k) && typeof v === 'number') out.push({ run: run.id, step: row.step, metric: k.replace(/_/g, ' '), value: v });
  const starts = processStarts(run.dir);
  const timed = rows.filter((r) => typeof r.step === 'number' && typeof r.time === 'number').sort((a, b) => a.step - b.step);
  for (const row of rows) if (typeof row.step_s === 'number') out.push({ run: run.id, step: row.step, metric: STEP_SECONDS, value: row.step_s });
  if (rows.some((r) => typeof r.step_s === 'number')) return out;
  for (let i = 1; i < timed.length; i++) {
    const [a, b] = [timed[i - 1], timed[i]];
    const dt = (b.time - a.time) / (b.step - a.step);
    const resumed = starts.some((t) => t > a.time && t <= b.time);
    if (b.step > a.step && dt >= 0 && !resumed) out.push({ run: run.id, step: b.step, metric: STEP_SECONDS, value: dt });
  }
  return out;
}

/**
 * The paper's Table 1 layout: rows = methods; FID ↓, CLIP similarity ↑ (the directional CLIP) with
 * the method-level intervals, and the total time of Eq. 13–14 at m = 100, n = 10 from the measured
 * τ_train (s per prompt) and τ_infer (s per image), means over the runs.
 */
function table1Block(groups: Group[], sums: Summaries): { table: Table; csvHead: string[]; csvRows: Array<Array<string | number | null>> } | null {
  const timeHead = `total time (s), m = ${TABLE1_M}, n = ${TABLE1_N}`;
  const rows = groups.flatMap((g) => {
    const f = sums.method(g, 'fid');
    const c = sums.method(g, 'clip_directional');
    if (!f || !c) return [];
    const tr = sums.method(g, 'tau_train_s');
    const inf = sums.method(g, 'tau_infer_s');
    const total = tr && inf ? totalTime({ train_s: tr.mean, infer_s: inf.mean }, TABLE1_M, TABLE1_N) : null;
    return [{ g, f, c, total }];
  });
  if (!rows.length) return null;
  const how = `FID: ${rows[0].f.interval}; CLIP similarity: ${rows[0].c.interval}`;
  return {
    table: {
      title: 'Table 1',
      columns: ['method', 'FID ↓', 'CLIP similarity ↑', timeHead],
      rows: rows.map(({ g, f, c, total }) => [g.label, withCi(f), withCi(c), total === null ? null : fmt3(total)]),
      csv: 'table1_paper.csv',
      note: `As the paper's Table 1. CLIP similarity is the directional CLIP. ${how}; ${LEVEL * 100}% CI in brackets. Total time = n·τ_train + m·n·τ_infer (Eq. 13–14; 0 training for SDEdit and DDIB) at the paper's m = ${TABLE1_M} images per prompt and n = ${TABLE1_N} prompts, from the measured τ_train per prompt and τ_infer per image (means over runs; no interval).`,
    },
    csvHead: ['method', 'fid', 'fid_ci95_lo', 'fid_ci95_hi', 'clip_directional', 'clip_directional_ci95_lo', 'clip_directional_ci95_hi', `total_time_s_m${TABLE1_M}_n${TABLE1_N}`, 'interval'],
    csvRows: rows.map(({ g, f, c, total }) => [g.label, f.mean, f.lo, f.hi, c.mean, c.lo, c.hi, total, how]),
  };
}

export interface ExperimentPage {
  name: string;
  file: string;
  path: string;
  runs: number;
  finished: number;
  backends?: string[];
  gitShas?: string[];
  lastFinished?: string | null;
  status?: string;
}

function statusCounts(groups: Group[]): string {
  const c = new Map<string, number>();
  for (const r of groups.flatMap((g) => g.runs)) c.set(r.status, (c.get(r.status) ?? 0) + 1);
  return [...c].map(([k, v]) => `${v} ${k}`).join(', ') || 'not run';
}

/**
 * Builds reports/<name>/index.html (+ csv, json, charts, grids) for experiment files: one file
 * (named after its experiment), or several combined under one name (Table 1: one file per method).
 */
export async function buildExperimentPage(files: string[], opts: LoadOptions, store: RunStore, out: string, combined?: string): Promise<ExperimentPage> {
  const planned = planAll(files, opts);
  const name = combined ?? planned[0]?.config.experiment ?? basename(files[0]);
  const file = files.join(' ');
  const dir = join(out, name);
  mkdirSync(dir, { recursive: true });
  const groups = groupsOf(planned, store);
  const sums = new Summaries();
  const metrics = TABLE_METRICS.filter((m) => groups.some((g) => g.runs.some((r) => r.status === 'finished' && num(res(r)[m]) !== null)));
  // Main table: one row per group (method), mean over prompts with the stratified bootstrap.
  const main: Table = { title: `Results per method: mean over prompts [${LEVEL * 100}% CI]`, columns: ['method', ...metrics.map(metricLabel), 'runs'], rows: [], csv: 'results.csv', note: INTERVAL_NOTE };
  const csvRows: Array<Array<string | number | null>> = [];
  const json: Array<Record<string, unknown>> = [];
  const bars: MetricRow[] = [];
  for (const g of groups) {
    const done = `${g.runs.filter((r) => r.status === 'finished').length}/${planned.filter((p) => groupLabel(p) === g.label).length}`;
    const row: Array<string | number | null> = [g.label];
    const csvRow: Array<string | number | null> = [g.label];
    const rec: Record<string, unknown> = { group: g.label, method: g.method, runs: g.runs.map((r) => r.id), interval_level: LEVEL };
    const kinds: Array<Summary | null> = [];
    for (const m of metrics) {
      const s = sums.method(g, m);
      row.push(withCi(s));
      csvRow.push(s?.mean ?? null, s?.lo ?? null, s?.hi ?? null);
      rec[m] = s;
      kinds.push(s);
      if (s) bars.push({ group: g.label, metric: m, mean: s.mean, lo: s.lo ?? s.mean, hi: s.hi ?? s.mean, n: s.prompts });
    }
    row.push(done);
    csvRow.push(intervalKinds(metrics, kinds), done);
    main.rows.push(row);
    csvRows.push(csvRow);
    json.push(rec);
  }
  // CSV: raw numbers, the interval's bounds in their own columns and its unit in `interval`.
  const csvHead = ['method', ...metrics.flatMap((m) => [m, `${m}_ci95_lo`, `${m}_ci95_hi`]), 'interval', 'runs'];
  writeFileAtomic(join(dir, 'results.csv'), stringify([csvHead, ...csvRows]));
  // A combined page's table also under the page's own name (make table1 → reports/table1/table1.csv).
  if (combined) writeFileAtomic(join(dir, `${name}.csv`), stringify([csvHead, ...csvRows]));
  // Per prompt: one row per (method, prompt), with the per-prompt interval and its unit.
  const promptTable: Table = { title: `Per prompt: mean over seeds [${LEVEL * 100}% CI]`, columns: ['method', 'prompt', 'seeds', ...metrics.map(metricLabel), 'interval'], rows: [], csv: 'prompts.csv' };
  const promptCsv: Array<Array<string | number | null>> = [];
  const promptJson: Array<Record<string, unknown>> = [];
  for (const g of groups) {
    sums.prompts(g).forEach(([prompt, runs], i) => {
      const ss = metrics.map((m) => promptSummary(runs, m, BOOT_SEED + i));
      const kinds = intervalKinds(metrics, ss);
      promptTable.rows.push([g.label, prompt, runs.length, ...ss.map(withCi), kinds]);
      promptCsv.push([g.label, prompt, runs.length, ...ss.flatMap((s) => [s?.mean ?? null, s?.lo ?? null, s?.hi ?? null]), kinds]);
      promptJson.push({ group: g.label, prompt, seeds: runs.map((r) => r.seed), ...Object.fromEntries(metrics.map((m, k) => [m, ss[k]])) });
    });
  }
  writeFileAtomic(join(dir, 'prompts.csv'), stringify([['method', 'prompt', 'seeds', ...metrics.flatMap((m) => [m, `${m}_ci95_lo`, `${m}_ci95_hi`]), 'interval'], ...promptCsv]));
  writeJsonAtomic(join(dir, 'results.json'), { interval_note: INTERVAL_NOTE, methods: json, prompts: promptJson });
  const table1 = table1Block(groups, sums);
  if (table1) writeFileAtomic(join(dir, 'table1_paper.csv'), stringify([table1.csvHead, ...table1.csvRows]));
  // Every run, its own values (no interval: one run).
  const finished = groups.flatMap((g) => g.runs.filter((r) => r.status === 'finished').map((r) => ({ g, r })));
  const perPrompt: Table = { title: 'Per run', columns: ['method', 'prompt', 'seed', 'run', ...metrics.map(metricLabel)], rows: finished.map(({ g, r }) => [g.label, String(res(r).prompt ?? ''), r.config!.seed, r.id, ...metrics.map((m) => num(res(r)[m]))]), csv: 'runs.csv' };
  writeFileAtomic(join(dir, 'runs.csv'), stringify([['method', 'prompt', 'seed', 'run', ...metrics], ...perPrompt.rows]));
  // Per prompt group (Table 2: where CLIP guidance fails), mean over the group's runs.
  const byGroup = new Map<string, Array<{ g: Group; r: RunSummary }>>();
  for (const x of finished) {
    const pg = res(x.r).prompt_group;
    if (typeof pg !== 'string') continue;
    const key = `${x.g.label}\u0000${pg}`;
    byGroup.set(key, [...(byGroup.get(key) ?? []), x]);
  }
  const groupTable: Table | null = byGroup.size
    ? {
        title: 'Per prompt group (mean over prompts and seeds)',
        columns: ['method', 'prompt group', 'runs', ...metrics.map(metricLabel)],
        rows: [...byGroup.entries()].map(([key, xs]) => {
          const [label, pg] = key.split('\u0000');
          return [label, pg, xs.length, ...metrics.map((m) => {
            const v = xs.map(({ r }) => num(res(r)[m])).filter((x): x is number => x !== null);
            return v.length ? mean(v) : null;
          })];
        }),
        csv: 'groups.csv',
      }
    : null;
  if (groupTable) writeFileAtomic(join(dir, 'groups.csv'), stringify([['method', 'prompt group', 'runs', ...metrics], ...groupTable.rows]));
  const figures: Figure[] = [];
  for (const m of BAR_METRICS.filter((x) => metrics.includes(x))) figures.push(await figure(dir, `bars-${m}`, `${metricLabel(m)} per method: mean over prompts, ${LEVEL * 100}% bootstrap CI`, metricBars(bars, m, metricLabel(m))));
  const hqs: HqsPoint[] = [];
  for (const { r } of finished) {
    const csv = join(r.dir, 'artifacts', 'hqs.csv');
    if (!existsSync(csv) || hqs.some((p) => p.series === res(r).prompt)) continue;
    const selected = new Set(((res(r).selection as { timesteps?: number[] } | undefined)?.timesteps ?? []) as number[]);
    const rows = readCsv(csv);
    const [n, h] = [minMax(rows.map((x) => x.N)), minMax(rows.map((x) => x.H))];
    const hk = Object.keys(rows[0]).find((k) => k.startsWith('hqs_'))!;
    rows.forEach((x, i) => hqs.push({ series: String(res(r).prompt), t: x.t, N: n[i], H: h[i], hqs: x[hk], selected: selected.has(x.t) }));
  }
  if (hqs.length) figures.push(await figure(dir, 'hqs', 'HQS over timesteps (normalised N̄, H̄; selected t marked)', hqsCurves(hqs, 'HQS per prompt')));
  if (groups.some((g) => g.method === 'sdedit') && metrics.includes('fid') && metrics.includes('clip_directional')) {
    const pts = groups.flatMap((g) => {
      const f = sums.method(g, 'fid');
      const c = sums.method(g, 'clip_directional');
      // SDEdit's line runs in strength order (a group that does not sweep strength still has one).
      const strength = (g.runs.find((r) => r.config)?.config?.method.params as Record<string, unknown> | undefined)?.strength;
      const label = g.method === 'sdedit' && typeof strength === 'number' ? `s=${strength}` : g.label.replace(/^\S+\s?/, '') || g.method;
      return f && c ? [{ method: g.method, label, order: typeof strength === 'number' ? strength : 0, fid: f.mean, clip_directional: c.mean }] : [];
    });
    figures.push(await figure(dir, 'tradeoff', 'Fidelity–editability trade-off', tradeoff(pts, 'FID vs directional CLIP')));
  }
  const times = groups.flatMap((g) => {
    const tr = sums.method(g, 'tau_train_s');
    const inf = sums.method(g, 'tau_infer_s');
    return tr && inf ? [{ method: g.label, tau_train: tr.mean, tau_infer: inf.mean }] : [];
  });
  if (times.length >= 2) {
    const n = Math.max(1, new Set(finished.map(({ r }) => res(r).prompt)).size);
    const be = times.flatMap((a, i) => times.slice(i + 1).flatMap((b) => {
      const ta = { train_s: a.tau_train, infer_s: a.tau_infer };
      const tb = { train_s: b.tau_train, infer_s: b.tau_infer };
      // Whichever trains longer catches up per image (if it is faster per image at all).
      const m = breakEven(ta, tb) ?? breakEven(tb, ta);
      return m === null || m === 0 ? [] : [{ pair: `${a.method} vs ${b.method}`, m }];
    }));
    // Wide enough to show every break-even point (a quarter beyond the last), at least m = 200.
    const maxM = Math.min(5000, Math.max(200, Math.ceil((1.25 * Math.max(0, ...be.map((b) => b.m))) / 50) * 50));
    figures.push(await figure(dir, 'time', 'Total time vs images per prompt (Eq. 13–15)', timeVsM(times, n, maxM, be, 'total time')));
  }
  const curves = finished.slice(0, 12).flatMap(({ r }) => metricLines(r));
  if (curves.length) figures.push(await figure(dir, 'training', `Training curves (metrics.jsonl; "${STEP_SECONDS}": time between consecutive steps, the step across a resume left out)`, trainingCurves(curves, 'training')));
  // Image grids.
  const grids: string[] = [];
  // Per prompt (first seed): rows = source images, columns = original + each group's edit.
  const prompts = [...new Set(finished.map(({ r }) => String(res(r).prompt ?? '')))].filter(Boolean);
  for (const [pi, prompt] of prompts.entries()) {
    const sheets = groups.flatMap((g) => {
      const r = g.runs.filter((x) => x.status === 'finished' && res(x).prompt === prompt).sort((a, b) => a.config!.seed - b.config!.seed)[0];
      const path = r ? join(r.dir, 'artifacts', 'edits.png') : '';
      return r && existsSync(path) ? [{ label: g.label, path }] : [];
    });
    if (sheets.length < 2) continue;
    mkdirSync(join(dir, 'grids'), { recursive: true });
    comparisonGrid(sheets, join(dir, 'grids', `compare-${pi}.png`));
    grids.push(`<figure><figcaption>${escapeHtml(prompt)} — columns: original, ${sheets.map((x) => escapeHtml(x.label)).join(', ')}</figcaption><img class="grid" src="grids/compare-${pi}.png" alt="comparison"></figure>`);
  }
  for (const { g, r } of finished.slice(0, 30)) {
    const src = join(r.dir, 'artifacts', 'edits.png');
    if (!existsSync(src)) continue;
    mkdirSync(join(dir, 'grids'), { recursive: true });
    copyFileSync(src, join(dir, 'grids', `${r.id}.png`));
    grids.push(`<figure><figcaption>${escapeHtml(g.label)} · ${escapeHtml(res(r).prompt ?? '')} · seed ${r.config!.seed} (top: originals, bottom: edits)</figcaption><img class="grid" src="grids/${escapeHtml(r.id)}.png" alt="edits"></figure>`);
  }
  const git = gitInfo();
  const envOf = (r: RunSummary) => (r.env ?? {}) as { backend?: { choice?: string }; git?: { sha?: string | null; dirty?: boolean | null }; finished_at?: string };
  const backends = [...new Set(finished.map(({ r }) => envOf(r).backend?.choice ?? '?'))];
  const runShas = [...new Set(finished.map(({ r }) => `${envOf(r).git?.sha?.slice(0, 10) ?? '?'}${envOf(r).git?.dirty ? '+dirty' : ''}`))];
  const lastFinished = finished.map(({ r }) => envOf(r).finished_at ?? '').sort().at(-1) ?? null;
  const itemsPerRun = [...new Set(finished.map(({ r }) => num(res(r).n)).filter((x) => x !== null))];
  const provenance = [
    `experiment file ${escapeHtml(file)}`,
    `${planned.length} planned runs, ${finished.length} finished`,
    `seeds ${escapeHtml([...new Set(planned.map((p) => p.config.seed))].join(', '))}`,
    `backend ${escapeHtml(backends.join(', ') || '—')}`,
    `runs' git ${escapeHtml(runShas.join(', ') || '—')}`,
    `N = ${escapeHtml(itemsPerRun.join(', ') || '—')} evaluation images per run`,
    `last finished ${escapeHtml(lastFinished ?? '—')}`,
    `report git ${escapeHtml(git.sha?.slice(0, 10) ?? '—')}${git.dirty ? ' (dirty)' : ''}`,
    `runs: ${planned.map((p) => escapeHtml(p.id)).join(' ')}`,
  ].join(' · ');
  const body = [...(table1 ? [tableHtml(table1.table)] : []), tableHtml(main), tableHtml(promptTable), ...(groupTable ? [tableHtml(groupTable)] : []), ...figures.map(figureHtml), tableHtml(perPrompt), grids.length ? `<h2>Edits</h2>${grids.join('\n')}` : ''].join('\n');
  writeFileAtomic(join(dir, 'index.html'), page({ title: name, vendor: '../vendor', body, provenance }));
  return { name, file, path: join(dir, 'index.html'), runs: planned.length, finished: finished.length, backends, gitShas: runShas, lastFinished, status: statusCounts(groups) };
}

/** Copies the browser bundles next to the pages (offline, no CDN). */
export function copyVendor(out: string): void {
  const dir = join(out, 'vendor');
  mkdirSync(dir, { recursive: true });
  const files: Array<[string, string]> = [
    ['vega', 'build/vega.min.js'],
    ['vega-lite', 'build/vega-lite.min.js'],
    ['vega-embed', 'build/vega-embed.min.js'],
  ];
  for (const [pkg, rel] of files) {
    const root = join(require.resolve(pkg).split(`node_modules/${pkg}/`)[0], 'node_modules', pkg);
    copyFileSync(join(root, rel), join(dir, basename(rel)));
  }
}

export async function buildReport(files: string[], opts: LoadOptions, store: RunStore, out: string, combine?: string): Promise<{ pages: ExperimentPage[]; index: string }> {
  mkdirSync(out, { recursive: true });
  copyVendor(out);
  const pages: ExperimentPage[] = [];
  if (combine) pages.push(await buildExperimentPage(files, opts, store, out, combine));
  else for (const f of files) pages.push(await buildExperimentPage([f], opts, store, out));
  // The index lists every page in the folder, not only this call's (earlier reports stay linked).
  for (const d of existsSync(out) ? readdirSync(out, { withFileTypes: true }) : []) {
    const p = join(out, d.name, 'index.html');
    if (d.isDirectory() && existsSync(p) && !pages.some((x) => x.path === p)) pages.push({ name: d.name, file: '(earlier report)', path: p, runs: 0, finished: 0 });
  }
  const rows = pages
    .map((p) => `<tr><td><a href="${escapeHtml(relative(out, p.path))}">${escapeHtml(p.name)}</a></td><td>${escapeHtml(p.file)}</td><td>${p.finished}/${p.runs}</td><td>${escapeHtml(p.status ?? '')}</td><td>${escapeHtml(p.lastFinished ?? '')}</td><td>${escapeHtml((p.gitShas ?? []).join(', '))}</td><td>${escapeHtml((p.backends ?? []).join(', '))}</td></tr>`)
    .join('\n');
  const index = join(out, 'index.html');
  writeFileAtomic(index, page({ title: 'sdd-bench reports', vendor: 'vendor', body: `<table><thead><tr><th>experiment</th><th>file</th><th>finished</th><th>status</th><th>last finished</th><th>git</th><th>backend</th></tr></thead><tbody>${rows}</tbody></table>`, provenance: `generated ${escapeHtml(new Date().toISOString())}` }));
  return { pages, index };
}

/** The report folder: --out, else $SDD_REPORTS, else <project>/reports. */
export function reportOut(out?: string): string {
  return resolve(out ?? process.env.SDD_REPORTS ?? join(PROJECT_ROOT, 'reports'));
}
