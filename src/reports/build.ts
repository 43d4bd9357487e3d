/**
 * `sdd report`: one page per experiment (its planned runs, read from the store) and an index.
 * A page is assembled here from its parts: tables (tables.ts, table1.ts), figures (figures.ts:
 * the report sections, sections/ and the methods' own), image grids (grids.ts) and provenance
 * (provenance.ts). groups.ts says what a row is; intervals.ts which 95% interval each level gets
 * (per prompt: t over seeds or the item bootstrap; per method: a bootstrap stratified by prompt),
 * and every table says it too.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import type { LoadOptions } from '../experiments/load.js';
import { planAll } from '../experiments/plan.js';
import { metricKeys } from '../metrics/registry.js';
import type { RunStore } from '../runs/store.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { sectionFigures } from './figures.js';
import { gridsHtml } from './grids.js';
import { finishedRuns, groupsOf, num, resultValues, Summaries, type Group, type PageContext } from './groups.js';
import { escapeHtml, figureHtml, page, tableHtml } from './html.js';
import { copyVendor } from './output.js';
import { provenance } from './provenance.js';
import { pageScope, pageTitles, scopeCaption, scopePhrase } from './scope.js';
import { table1 } from './table1.js';
import { groupFlag, methodTable, promptGroupTable, promptTable, runsTable, writeResultsJson } from './tables.js';

export { figure } from './figures.js';
export { meanCi } from './intervals.js';
export { copyVendor, reportOut } from './output.js';

export interface ExperimentPage {
  name: string;
  /** The page's heading: its title and scope ("Table 1: … — quick profile: 2 prompts, …"). */
  title?: string;
  file: string;
  path: string;
  runs: number;
  finished: number;
  /** The experiments (config names) whose runs the page shows. */
  experiments?: string[];
  profile?: string | null;
  backends?: string[];
  gitShas?: string[];
  lastFinished?: string | null;
  status?: string;
}

/** Each page's summary, next to it: the index lists earlier pages from it. */
const PAGE_JSON = 'page.json';

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
  const groups = groupsOf(planned, store);
  const finished = finishedRuns(groups);
  const metrics = metricKeys().filter((m) => finished.some(({ r }) => num(resultValues(r)[m]) !== null));
  return { name, dir, combined: combined !== undefined, planned, groups, sums: new Summaries(), metrics, finished };
}

/** The sentence under the title: the scope, what else the page combines, and its flagged rows. */
function caption(ctx: PageContext, titles: string[], scopeHtml: string): string {
  const also = titles.length > 1 ? ` With: ${titles.slice(1).map(escapeHtml).join('; ')}.` : '';
  const flagged = ctx.groups.filter((g) => groupFlag(ctx, g)).map((g) => escapeHtml(g.label));
  const warn = flagged.length
    ? ` <span class="flag">⚠ No edit: ${flagged.join(', ')}</span> — hit rate 0 and preservation ≈ 1: ` +
      "the edits left the images as they were, so these rows' FID and time do not describe an edit."
    : '';
  return `${scopeHtml}${also}${warn}`;
}

/**
 * Builds reports/<name>/index.html (+ csv, json, charts, grids) for experiment files: one file
 * (named after its experiment), or several combined under one name (Table 1: one file per method).
 * A page without finished runs is not written (an earlier page of it stays): null.
 */
async function buildExperimentPage(
  files: string[],
  opts: LoadOptions,
  store: RunStore,
  out: string,
  combined?: string,
): Promise<ExperimentPage | null> {
  const ctx = pageContext(files, opts, store, out, combined);
  if (!ctx.finished.length) return null;
  mkdirSync(ctx.dir, { recursive: true });
  const file = files.join(' ');
  const images = ctx.finished.map(({ r }) => num(resultValues(r).n)).filter((x): x is number => x !== null);
  const scope = pageScope(files, opts, ctx.planned, images);
  const titles = pageTitles(files, opts);
  const title = `${titles[0]} — ${scopePhrase(scope)}`;
  const methods = methodTable(ctx);
  const prompts = promptTable(ctx);
  writeResultsJson(ctx, methods.json, prompts.json);
  const paper = table1(ctx, scopePhrase(scope));
  const runs = runsTable(ctx);
  const byPromptGroup = promptGroupTable(ctx);
  const figures = await sectionFigures(ctx);
  const grids = gridsHtml(ctx);
  const prov = provenance(ctx, file);
  const tables = [paper, methods.table, prompts.table, byPromptGroup].flatMap((t) => (t ? [tableHtml(t)] : []));
  const body = [...tables, ...figures.map(figureHtml), tableHtml(runs), grids].join('\n');
  const path = join(ctx.dir, 'index.html');
  const cap = caption(ctx, titles, scopeCaption(scope));
  writeFileAtomic(path, page({ title, caption: cap, vendor: '../vendor', body, provenance: prov.html }));
  const { backends, gitShas, lastFinished } = prov;
  const counts = { runs: ctx.planned.length, finished: ctx.finished.length };
  const experiments = [...new Set(ctx.planned.map((p) => p.config.experiment))];
  const status = statusCounts(ctx.groups);
  const summary: ExperimentPage = {
    name: ctx.name,
    title,
    file,
    path,
    ...counts,
    experiments,
    profile: scope.profile,
    backends,
    gitShas,
    lastFinished,
    status,
  };
  writeJsonAtomic(join(ctx.dir, PAGE_JSON), { ...summary, path: 'index.html' });
  return summary;
}

const INDEX_HEAD = ['page', 'title', 'file', 'finished', 'status', 'last finished', 'git', 'backend'];

function indexRow(out: string, p: ExperimentPage): string {
  const link = existsSync(p.path)
    ? `<a href="${escapeHtml(relative(out, p.path))}">${escapeHtml(p.name)}</a>`
    : escapeHtml(p.name);
  const cells = [
    link,
    escapeHtml(p.title ?? ''),
    escapeHtml(p.file),
    `${p.finished}/${p.runs}`,
    escapeHtml(p.status ?? ''),
    escapeHtml(p.lastFinished ?? ''),
    escapeHtml((p.gitShas ?? []).join(', ')),
    escapeHtml((p.backends ?? []).join(', ')),
  ];
  return `<tr>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;
}

/** An earlier page of the folder, from its page.json (pages of older versions: their name only). */
function earlierPage(out: string, name: string): ExperimentPage {
  const path = join(out, name, 'index.html');
  try {
    const p = JSON.parse(readFileSync(join(out, name, PAGE_JSON), 'utf-8')) as ExperimentPage;
    return { ...p, path };
  } catch {
    return { name, file: '(an earlier report without its summary: sdd report it again)', path, runs: 0, finished: 0 };
  }
}

/**
 * Experiments with finished runs in the store that no page shows, by experiment name, with the
 * file and profile their runs were planned with (the command that writes their page).
 */
function unreported(store: RunStore, pages: ExperimentPage[]): ExperimentPage[] {
  const shown = new Set(pages.flatMap((p) => p.experiments ?? [p.name]));
  const by = new Map<string, { file: string; profile: string | null; n: number; last: string }>();
  for (const r of store.list()) {
    const name = r.config?.experiment;
    if (r.status !== 'finished' || !name || shown.has(name)) continue;
    const e = by.get(name) ?? { file: r.origin?.file ?? '?', profile: r.origin?.profile ?? null, n: 0, last: '' };
    e.n++;
    const at = (r.env as { finished_at?: string } | null)?.finished_at ?? '';
    if (at > e.last) e.last = at;
    by.set(name, e);
  }
  return [...by].map(([name, e]) => {
    const file = relative(process.cwd(), e.file) || e.file;
    const cmd = `sdd report ${file}${e.profile ? ` --profile ${e.profile}` : ''}`;
    return {
      name,
      title: `no page yet: ${cmd}`,
      file,
      path: '',
      runs: e.n,
      finished: e.n,
      status: `${e.n} finished`,
      lastFinished: e.last || null,
    };
  });
}

/**
 * The index lists every page in the folder (this call's and earlier ones, from their page.json)
 * and every experiment with finished runs in the store that has no page yet.
 */
function writeIndex(out: string, pages: ExperimentPage[], store: RunStore): string {
  const all = [...pages];
  for (const d of existsSync(out) ? readdirSync(out, { withFileTypes: true }) : []) {
    const p = join(out, d.name, 'index.html');
    if (d.isDirectory() && existsSync(p) && !all.some((x) => x.path === p)) all.push(earlierPage(out, d.name));
  }
  all.sort((a, b) => a.name.localeCompare(b.name));
  const rows = [...all, ...unreported(store, all)];
  const head = `<thead><tr>${INDEX_HEAD.map((h) => `<th>${h}</th>`).join('')}</tr></thead>`;
  const body = `<table>${head}<tbody>${rows.map((p) => indexRow(out, p)).join('\n')}</tbody></table>`;
  const index = join(out, 'index.html');
  const prov = `generated ${escapeHtml(new Date().toISOString())} from the run store ${escapeHtml(store.root)}`;
  writeFileAtomic(index, page({ title: 'sdd-bench reports', vendor: 'vendor', body, provenance: prov }));
  return index;
}

/**
 * The pages of the files (one, or one per file) and the index. `pages` holds only the pages this
 * call wrote (`skipped`: the names it did not, having no finished runs), so callers announce only those.
 */
export async function buildReport(
  files: string[],
  opts: LoadOptions,
  store: RunStore,
  out: string,
  combine?: string,
): Promise<{ pages: ExperimentPage[]; skipped: string[]; index: string }> {
  mkdirSync(out, { recursive: true });
  copyVendor(out);
  const pages: ExperimentPage[] = [];
  const skipped: string[] = [];
  const groups = combine ? [files] : files.map((f) => [f]);
  for (const fs of groups) {
    const p = await buildExperimentPage(fs, opts, store, out, combine);
    if (p) pages.push(p);
    else skipped.push(combine ?? fs[0]);
  }
  return { pages, skipped, index: writeIndex(out, pages, store) };
}
