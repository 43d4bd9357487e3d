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
  /** The method and the parameters that tell its row from the method's other rows ("sdedit strength=0.5"). */
  label: string;
  method: string;
  runs: RunSummary[];
  /** Planned runs of the row (finished or not). */
  planned: number;
}

/** A finished run of a group. */
export interface GroupRun {
  g: Group;
  r: RunSummary;
}

/** Params as dotted keys (objects flattened, arrays kept whole), the prompt left out (rows span prompts). */
function flatParams(obj: Record<string, unknown>, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix + k;
    if (key === 'prompt') continue;
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k2, v2] of flatParams(v as Record<string, unknown>, `${key}.`)) out.set(k2, v2);
    } else out.set(key, typeof v === 'string' ? v : JSON.stringify(v));
  }
  return out;
}

/** The params every run of a bucket shares (a where: rule may set some per prompt: those are no row's). */
function commonParams(runs: PlannedRun[]): Map<string, string> {
  const [first, ...rest] = runs.map((r) => flatParams(r.config.method.params));
  return new Map([...first].filter(([k, v]) => rest.every((p) => p.get(k) === v)));
}

/**
 * What tells a bucket's row from its method's other rows: the shared params and the engine (tfjs
 * runs record none). Runs on two engines are two rows ("sdd engine=torch/fp32"), never replicates.
 */
function rowParams(runs: PlannedRun[]): Map<string, string> {
  const params = commonParams(runs);
  const e = runs[0].config.engine;
  params.set('engine', e ? `${e.name}/${e.precision}` : 'tfjs');
  return params;
}

/** A key's short name: its last part, or more of it where two chosen keys end alike. */
function shortNames(keys: string[]): Map<string, string> {
  const last = (k: string) => k.split('.').pop()!;
  return new Map(keys.map((k) => [k, keys.filter((x) => last(x) === last(k)).length > 1 ? k : last(k)]));
}

/**
 * Row labels, derived from what differs between rows, for every method alike: a method with one
 * row is its name; with several, each row adds the params whose values differ between them
 * (table1's SDEdit at strength 0.5 beside the trade-off's 0.3, 0.7, 0.9: "sdedit strength=0.5").
 */
function labels(buckets: Array<{ method: string; params: Map<string, string> }>): string[] {
  return buckets.map((b) => {
    const same = buckets.filter((x) => x.method === b.method);
    if (same.length === 1) return b.method;
    const keys = [...new Set(same.flatMap((x) => [...x.params.keys()]))].sort();
    const differ = keys.filter((k) => same.some((x) => x.params.get(k) !== same[0].params.get(k)));
    const names = shortNames(differ);
    const parts = differ.filter((k) => b.params.has(k)).map((k) => `${names.get(k)}=${b.params.get(k)}`);
    return [b.method, ...parts].join(' ');
  });
}

/**
 * The rows of a page: runs that share their experiment, method and sweep point (all but the prompt)
 * form a bucket, labelled by labels(); buckets with the same label (the same settings planned by two
 * files) are one row.
 */
export function groupsOf(planned: PlannedRun[], store: RunStore): Group[] {
  const buckets = new Map<string, PlannedRun[]>();
  for (const r of planned) {
    const point = Object.entries(r.config.point).filter(([k]) => k !== 'method.params.prompt');
    const key = JSON.stringify([r.config.experiment, r.config.method.name, point]);
    buckets.set(key, [...(buckets.get(key) ?? []), r]);
  }
  const list = [...buckets.values()];
  const names = labels(list.map((runs) => ({ method: runs[0].config.method.name, params: rowParams(runs) })));
  const ids = new Set(store.ids());
  const map = new Map<string, Group>();
  list.forEach((runs, i) => {
    const label = names[i];
    const g = map.get(label) ?? { label, method: runs[0].config.method.name, runs: [], planned: 0 };
    for (const r of runs) if (ids.has(r.id)) g.runs.push(store.summary(r.id));
    g.planned += runs.length;
    map.set(label, g);
  });
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
