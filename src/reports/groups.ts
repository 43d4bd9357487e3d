/**
 * The rows of a report page. Groups are runs sharing everything but prompt and seed (a method
 * row). A group's metric is the mean over prompts of the per-prompt means over seeds, with the
 * intervals of intervals.ts, computed once per (group, metric): FID's bootstrap is not free.
 */
import type { PlannedRun } from '../experiments/expand.js';
import { getMethod } from '../methods/registry.js';
import type { RunStore, RunSummary } from '../runs/store.js';
import { methodSummary, type Summary } from './intervals.js';
import { RunData } from './run_data.js';

export interface Group {
  label: string;
  method: string;
  runs: RunSummary[];
}

/** A finished run of a group. */
export interface GroupRun {
  g: Group;
  r: RunSummary;
}

export function groupLabel(r: PlannedRun): string {
  const extra = Object.entries(r.config.point)
    .filter(([k]) => k !== 'method.params.prompt' && k !== 'method')
    .map(([k, v]) => `${k.replace(/^method\.params\./, '')}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return [r.config.method.name, ...extra].join(' ');
}

export function groupsOf(planned: PlannedRun[], store: RunStore): Group[] {
  const map = new Map<string, Group>();
  const ids = new Set(store.ids());
  for (const r of planned) {
    const label = groupLabel(r);
    const g = map.get(label) ?? { label, method: r.config.method.name, runs: [] };
    if (ids.has(r.id)) g.runs.push(store.summary(r.id));
    map.set(label, g);
  }
  return [...map.values()];
}

/** Finished runs, group by group. */
export function finishedRuns(groups: Group[]): GroupRun[] {
  return groups.flatMap((g) => g.runs.filter((r) => r.status === 'finished').map((r) => ({ g, r })));
}

/**
 * A finished run's metrics (result.json keeps them under `metrics`), with the values its method
 * derives for the report (Method.reportValues: SDD's |S| and mean HQS).
 */
export function resultValues(r: RunSummary): Record<string, unknown> {
  const m = (r.result?.metrics as Record<string, unknown> | undefined) ?? {};
  const extra = r.config ? getMethod(r.config.method.name).reportValues?.(m) : undefined;
  return extra ? { ...m, ...extra } : m;
}

export const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** A group's finished runs by prompt, sorted (the bootstrap's stream of a prompt is its index). */
function promptRuns(g: Group): Array<[string, RunData[]]> {
  const map = new Map<string, RunData[]>();
  for (const r of g.runs.filter((x) => x.status === 'finished')) {
    const m = resultValues(r);
    const prompt = String(m.prompt ?? '');
    map.set(prompt, [...(map.get(prompt) ?? []), new RunData(r.id, r.dir, prompt, r.config!.seed, m)]);
  }
  return [...map.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** Method-level and per-prompt summaries, computed once per (group, metric). */
export class Summaries {
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

/** What every part of one page is built from. */
export interface PageContext {
  /** The page's name (an experiment's, or --combine's) and its folder. */
  name: string;
  dir: string;
  /** Several experiment files on one page (--combine). */
  combined: boolean;
  planned: PlannedRun[];
  groups: Group[];
  sums: Summaries;
  /** The metric-table keys some finished run has: the page's columns. */
  metrics: string[];
  finished: GroupRun[];
}
