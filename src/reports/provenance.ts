/** Where a page's numbers come from: the experiment, its runs, their machines and code versions. */
import type { RunSummary } from '../runs/store.js';
import { gitInfo } from '../util/env.js';
import { num, resultValues, type PageContext } from './groups.js';
import { escapeHtml } from './html.js';

export interface Provenance {
  /** One line of the page (escaped HTML). */
  html: string;
  backends: string[];
  /** The runs' git commits (10 characters, "+dirty" when the tree was). */
  gitShas: string[];
  lastFinished: string | null;
}

interface RunEnv {
  backend?: { choice?: string };
  git?: { sha?: string | null; dirty?: boolean | null };
  finished_at?: string;
}

const envOf = (r: RunSummary) => (r.env ?? {}) as RunEnv;

/** What computed a run: tfjs, or another engine with its precision and device ("torch fp32 on cuda:0 NVIDIA H200"). */
function engineOf(r: RunSummary): string {
  const v = resultValues(r);
  const e = v.engine as { name?: string; precision?: string } | undefined;
  if (!e?.name) return 'tfjs';
  const device = (v.engine_env as { device?: string } | undefined)?.device;
  return `${e.name} ${e.precision ?? ''}${device ? ` on ${device}` : ''}`;
}
const shaOf = (e: RunEnv) => `${e.git?.sha?.slice(0, 10) ?? '?'}${e.git?.dirty ? '+dirty' : ''}`;
const orDash = (xs: Array<string | number>) => escapeHtml(xs.join(', ') || '—');

export function provenance(ctx: PageContext, file: string): Provenance {
  const runs = ctx.finished.map(({ r }) => r);
  const backends = [...new Set(runs.map((r) => envOf(r).backend?.choice ?? '?'))];
  const engines = [...new Set(runs.map(engineOf))];
  const gitShas = [...new Set(runs.map((r) => shaOf(envOf(r))))];
  const lastFinished =
    runs
      .map((r) => envOf(r).finished_at ?? '')
      .sort()
      .at(-1) ?? null;
  const itemsPerRun = [...new Set(runs.map((r) => num(resultValues(r).n)).filter((x): x is number => x !== null))];
  const git = gitInfo();
  const html = [
    `experiment file ${escapeHtml(file)}`,
    `${ctx.planned.length} planned runs, ${runs.length} finished`,
    `seeds ${escapeHtml([...new Set(ctx.planned.map((p) => p.config.seed))].join(', '))}`,
    `engine ${orDash(engines)}`,
    `backend ${orDash(backends)}${engines.some((e) => !e.startsWith('tfjs')) ? ' (evaluation)' : ''}`,
    `runs' git ${orDash(gitShas)}`,
    `N = ${orDash(itemsPerRun)} evaluation images per run`,
    `last finished ${escapeHtml(lastFinished ?? '—')}`,
    `report git ${escapeHtml(git.sha?.slice(0, 10) ?? '—')}${git.dirty ? ' (dirty)' : ''}`,
    `runs: ${ctx.planned.map((p) => escapeHtml(p.id)).join(' ')}`,
  ].join(' · ');
  return { html, backends, gitShas, lastFinished };
}
