/**
 * `sdd report`: one page per experiment (its planned runs, read from the store) and an index.
 * Groups are runs sharing everything but prompt and seed; a group's metric is the mean over its
 * runs, with a 95% Student-t interval over per-seed means (over runs when there is one seed).
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join, relative, resolve } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import type { TopLevelSpec } from 'vega-lite';
import { mean, sampleStandardDeviation } from 'simple-statistics';
import type { LoadOptions } from '../experiments/load.js';
import { planAll } from '../cli/commands/experiments.js';
import type { PlannedRun } from '../experiments/expand.js';
import type { RunStore, RunSummary } from '../runs/store.js';
import { gitInfo, PROJECT_ROOT } from '../runs/env.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { breakEven } from '../metrics/total_time.js';
import { hqsCurves, metricBars, timeVsM, tradeoff, trainingCurves, type CurvePoint, type HqsPoint, type MetricRow } from './charts.js';
import { minMax } from '../sdd/hqs.js';
import { escapeHtml, figureHtml, page, tableHtml, type Figure, type Table } from './html.js';
import { renderSvg, svgToPng, validateSpec } from './render.js';
import { comparisonGrid } from './compare_grid.js';

const require = createRequire(import.meta.url);

export const TABLE_METRICS = ['selection_size', 'mean_hqs', 'fid', 'kid', 'clip_directional', 'clip_score', 'hit_rate', 'preservation_rate', 'hit_and_preserved', 'identity', 'tau_train_s', 'tau_infer_s'];
const BAR_METRICS = ['fid', 'clip_directional', 'hit_rate', 'identity'];

/** 97.5% quantiles of Student's t, df = 1..30 (standard table values). */
const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

export function meanCi(values: number[]): { mean: number; lo: number; hi: number; n: number } {
  const m = mean(values);
  if (values.length < 2) return { mean: m, lo: m, hi: m, n: values.length };
  const half = (T975[values.length - 2] ?? 1.96) * (sampleStandardDeviation(values) / Math.sqrt(values.length));
  return { mean: m, lo: m - half, hi: m + half, n: values.length };
}

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

/** Per-seed means (over prompts) of a metric, then mean ± CI over seeds (over runs if one seed). */
export function groupMetric(g: Group, metric: string): ReturnType<typeof meanCi> | null {
  const done = g.runs.filter((r) => r.status === 'finished' && num(res(r)[metric]) !== null);
  if (!done.length) return null;
  const bySeed = new Map<number, number[]>();
  for (const r of done) bySeed.set(r.config!.seed, [...(bySeed.get(r.config!.seed) ?? []), num(res(r)[metric])!]);
  const values = bySeed.size > 1 ? [...bySeed.values()].map((v) => mean(v)) : done.map((r) => num(res(r)[metric])!);
  return meanCi(values);
}

async function figure(dir: string, id: string, title: string, spec: TopLevelSpec): Promise<Figure> {
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

function metricLines(run: RunSummary): CurvePoint[] {
  const path = join(run.dir, 'metrics.jsonl');
  if (!existsSync(path)) return [];
  const out: CurvePoint[] = [];
  for (const line of readFileSync(path, 'utf-8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const row = JSON.parse(line) as Record<string, number>;
      for (const [k, v] of Object.entries(row)) if (k !== 'step' && k !== 't' && typeof v === 'number') out.push({ run: run.id, step: row.step, metric: k, value: v });
    } catch {
      // a torn last line of a running run
    }
  }
  return out;
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
  const metrics = TABLE_METRICS.filter((m) => groups.some((g) => groupMetric(g, m)));
  // Main table: one row per group.
  const main: Table = { title: 'Results (mean, 95% CI over seeds)', columns: ['method', ...metrics.flatMap((m) => [m, `${m} CI`]), 'runs'], rows: [], csv: 'results.csv' };
  const json: Array<Record<string, unknown>> = [];
  const bars: MetricRow[] = [];
  for (const g of groups) {
    const row: Array<string | number | null> = [g.label];
    const rec: Record<string, unknown> = { group: g.label, method: g.method, runs: g.runs.map((r) => r.id) };
    for (const m of metrics) {
      const s = groupMetric(g, m);
      row.push(s?.mean ?? null, s ? `${s.lo.toPrecision(3)} – ${s.hi.toPrecision(3)}` : null);
      rec[m] = s;
      if (s) bars.push({ group: g.label, metric: m, ...s });
    }
    row.push(`${g.runs.filter((r) => r.status === 'finished').length}/${planned.filter((p) => groupLabel(p) === g.label).length}`);
    main.rows.push(row);
    json.push(rec);
  }
  writeFileAtomic(join(dir, 'results.csv'), stringify([main.columns, ...main.rows]));
  // A combined page's table also under the page's own name (make table1 → reports/table1/table1.csv).
  if (combined) writeFileAtomic(join(dir, `${name}.csv`), stringify([main.columns, ...main.rows]));
  writeJsonAtomic(join(dir, 'results.json'), json);
  // Per-prompt table.
  const finished = groups.flatMap((g) => g.runs.filter((r) => r.status === 'finished').map((r) => ({ g, r })));
  const perPrompt: Table = { title: 'Per prompt and run', columns: ['method', 'prompt', 'seed', 'run', ...metrics], rows: finished.map(({ g, r }) => [g.label, String(res(r).prompt ?? ''), r.config!.seed, r.id, ...metrics.map((m) => num(res(r)[m]))]), csv: 'runs.csv' };
  writeFileAtomic(join(dir, 'runs.csv'), stringify([perPrompt.columns, ...perPrompt.rows]));
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
        columns: ['method', 'prompt group', 'runs', ...metrics],
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
  if (groupTable) writeFileAtomic(join(dir, 'groups.csv'), stringify([groupTable.columns, ...groupTable.rows]));
  const figures: Figure[] = [];
  for (const m of BAR_METRICS.filter((x) => metrics.includes(x))) figures.push(await figure(dir, `bars-${m}`, `${m} per method`, metricBars(bars, m, m)));
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
      const f = groupMetric(g, 'fid');
      const c = groupMetric(g, 'clip_directional');
      // SDEdit's line runs in strength order (a group that does not sweep strength still has one).
      const strength = (g.runs.find((r) => r.config)?.config?.method.params as Record<string, unknown> | undefined)?.strength;
      const label = g.method === 'sdedit' && typeof strength === 'number' ? `s=${strength}` : g.label.replace(/^\S+\s?/, '') || g.method;
      return f && c ? [{ method: g.method, label, order: typeof strength === 'number' ? strength : 0, fid: f.mean, clip_directional: c.mean }] : [];
    });
    figures.push(await figure(dir, 'tradeoff', 'Fidelity–editability trade-off', tradeoff(pts, 'FID vs directional CLIP')));
  }
  const times = groups.flatMap((g) => {
    const tr = groupMetric(g, 'tau_train_s');
    const inf = groupMetric(g, 'tau_infer_s');
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
  if (curves.length) figures.push(await figure(dir, 'training', 'Training curves (metrics.jsonl)', trainingCurves(curves, 'training')));
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
  const body = [tableHtml(main), ...(groupTable ? [tableHtml(groupTable)] : []), ...figures.map(figureHtml), tableHtml(perPrompt), grids.length ? `<h2>Edits</h2>${grids.join('\n')}` : ''].join('\n');
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
