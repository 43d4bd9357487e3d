/**
 * `sdd report`: one page per experiment (its planned runs, read from the store) and an index.
 * A page is assembled here from its parts: tables (tables.ts, table1.ts), figures (figures.ts:
 * the report sections, sections/ and the methods' own), image grids (grids.ts) and provenance
 * (provenance.ts). groups.ts says what a row is; intervals.ts which 95% interval each level gets
 * (per prompt: t over seeds or the item bootstrap; per method: a bootstrap stratified by prompt),
 * and every table says it too.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import type { LoadOptions } from '../experiments/load.js';
import { planAll } from '../experiments/plan.js';
import { metricKeys } from '../metrics/registry.js';
import type { RunStore } from '../runs/store.js';
import { writeFileAtomic } from '../util/atomic.js';
import { sectionFigures } from './figures.js';
import { gridsHtml } from './grids.js';
import { finishedRuns, groupsOf, num, resultValues, Summaries, type Group, type PageContext } from './groups.js';
import { escapeHtml, figureHtml, page, tableHtml } from './html.js';
import { copyVendor } from './output.js';
import { provenance } from './provenance.js';
import { table1 } from './table1.js';
import { methodTable, promptGroupTable, promptTable, runsTable, writeResultsJson } from './tables.js';

export { figure } from './figures.js';
export { groupLabel } from './groups.js';
export { meanCi } from './intervals.js';
export { copyVendor, reportOut } from './output.js';

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

/** The planned runs of the files, grouped, with the metric columns their finished runs have. */
function pageContext(files: string[], opts: LoadOptions, store: RunStore, out: string, combined?: string): PageContext {
  const planned = planAll(files, opts);
  const name = combined ?? planned[0]?.config.experiment ?? basename(files[0]);
  const dir = join(out, name);
  mkdirSync(dir, { recursive: true });
  const groups = groupsOf(planned, store);
  const finished = finishedRuns(groups);
  const metrics = metricKeys().filter((m) => finished.some(({ r }) => num(resultValues(r)[m]) !== null));
  return { name, dir, combined: combined !== undefined, planned, groups, sums: new Summaries(), metrics, finished };
}

/**
 * Builds reports/<name>/index.html (+ csv, json, charts, grids) for experiment files: one file
 * (named after its experiment), or several combined under one name (Table 1: one file per method).
 */
export async function buildExperimentPage(
  files: string[],
  opts: LoadOptions,
  store: RunStore,
  out: string,
  combined?: string,
): Promise<ExperimentPage> {
  const ctx = pageContext(files, opts, store, out, combined);
  const file = files.join(' ');
  const methods = methodTable(ctx);
  const prompts = promptTable(ctx);
  writeResultsJson(ctx, methods.json, prompts.json);
  const paper = table1(ctx);
  const runs = runsTable(ctx);
  const byPromptGroup = promptGroupTable(ctx);
  const figures = await sectionFigures(ctx);
  const grids = gridsHtml(ctx);
  const prov = provenance(ctx, file);
  const tables = [paper, methods.table, prompts.table, byPromptGroup].flatMap((t) => (t ? [tableHtml(t)] : []));
  const body = [...tables, ...figures.map(figureHtml), tableHtml(runs), grids].join('\n');
  const path = join(ctx.dir, 'index.html');
  writeFileAtomic(path, page({ title: ctx.name, vendor: '../vendor', body, provenance: prov.html }));
  const { backends, gitShas, lastFinished } = prov;
  const counts = { runs: ctx.planned.length, finished: ctx.finished.length };
  return { name: ctx.name, file, path, ...counts, backends, gitShas, lastFinished, status: statusCounts(ctx.groups) };
}

const INDEX_HEAD = ['experiment', 'file', 'finished', 'status', 'last finished', 'git', 'backend'];

function indexRow(out: string, p: ExperimentPage): string {
  const cells = [
    `<a href="${escapeHtml(relative(out, p.path))}">${escapeHtml(p.name)}</a>`,
    escapeHtml(p.file),
    `${p.finished}/${p.runs}`,
    escapeHtml(p.status ?? ''),
    escapeHtml(p.lastFinished ?? ''),
    escapeHtml((p.gitShas ?? []).join(', ')),
    escapeHtml((p.backends ?? []).join(', ')),
  ];
  return `<tr>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;
}

/** The index lists every page in the folder, not only this call's (earlier reports stay linked). */
function writeIndex(out: string, pages: ExperimentPage[]): string {
  for (const d of existsSync(out) ? readdirSync(out, { withFileTypes: true }) : []) {
    const p = join(out, d.name, 'index.html');
    if (d.isDirectory() && existsSync(p) && !pages.some((x) => x.path === p)) {
      pages.push({ name: d.name, file: '(earlier report)', path: p, runs: 0, finished: 0 });
    }
  }
  const head = `<thead><tr>${INDEX_HEAD.map((h) => `<th>${h}</th>`).join('')}</tr></thead>`;
  const body = `<table>${head}<tbody>${pages.map((p) => indexRow(out, p)).join('\n')}</tbody></table>`;
  const index = join(out, 'index.html');
  const prov = `generated ${escapeHtml(new Date().toISOString())}`;
  writeFileAtomic(index, page({ title: 'sdd-bench reports', vendor: 'vendor', body, provenance: prov }));
  return index;
}

export async function buildReport(
  files: string[],
  opts: LoadOptions,
  store: RunStore,
  out: string,
  combine?: string,
): Promise<{ pages: ExperimentPage[]; index: string }> {
  mkdirSync(out, { recursive: true });
  copyVendor(out);
  const pages: ExperimentPage[] = [];
  if (combine) pages.push(await buildExperimentPage(files, opts, store, out, combine));
  else for (const f of files) pages.push(await buildExperimentPage([f], opts, store, out));
  return { pages, index: writeIndex(out, pages) };
}
