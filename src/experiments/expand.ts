/**
 * Expands one experiment into runs: the sweep's cartesian grid (keys in sorted order) × seeds.
 * Each run gets a canonical config (sorted keys, defaults filled) and an id that is a short hash of
 * it: the same config always gives the same id, so finished runs are found and skipped.
 */
import { UserError } from '../errors.js';
import { canonicalJson, sha256, sortKeys } from '../util/hash.js';
import { getMethod } from '../methods/registry.js';
import { isDeepStrictEqual } from 'node:util';
import { getPath, setPath, type Plain } from './merge.js';
import { validateExperiment } from './load.js';
import type { Experiment } from './schema.js';
import { allExecutors } from '../exec/executors.js';
import { resolveEngine, type RunEngine } from '../methods/engine.js';
import { dirname, resolve } from 'node:path';
import { fileRoles, resolveWorldFiles, type WorldFiles } from '../world/files.js';

export interface RunConfig {
  experiment: string;
  experiment_version: number;
  world: string;
  method: { name: string; version: number; params: Record<string, unknown> };
  seed: number;
  /**
   * Always []: the former `metrics:` key was hashed into every id but never read (every run
   * computes every metric its world supports), so it went; the empty list stays so that ids,
   * and with them every stored run, are unchanged.
   */
  metrics: string[];
  /** The sweep point that produced this run (dotted key → value); empty without a sweep. */
  point: Record<string, unknown>;
  /** Set by a method's plan hook (Method.plan): hashed into the id in place of method.params. */
  identity?: Record<string, unknown>;
  /** The engine and its precision; absent for tfjs, so that every tfjs run keeps its id. */
  engine?: RunEngine;
}

/** How a run was planned: its file (absolute), profile and --set overrides (`sdd ls`/`show` print them). */
export interface RunOrigin {
  file: string;
  profile: string | null;
  sets: string[];
}

export interface PlannedRun {
  id: string;
  config: RunConfig;
  backend: Experiment['backend'];
  /** Where the experiment file says its runs execute, and with which cluster resources (not in the id). */
  executor?: Experiment['executor'];
  /** The file's settings blocks of the executors that have one, by key (e.g. `slurm`). */
  settings: Record<string, Record<string, unknown>>;
  /** The world's outside files by role, absolute (not in the id: the world's fingerprint is). */
  files: WorldFiles;
  /** Set by planAll (not in the id: the same config planned two ways is the same run). */
  origin?: RunOrigin;
}

export const ID_LENGTH = 12;

export function runId(config: RunConfig): string {
  const neutral = Object.entries(getMethod(config.method.name).idNeutral ?? {});
  if (neutral.length === 0 && !config.identity) return sha256(canonicalJson(config)).slice(0, ID_LENGTH);
  const { identity, ...rest } = config;
  const params = structuredClone(identity ?? config.method.params) as Plain;
  for (const [path, value] of neutral) if (isDeepStrictEqual(getPath(params, path), value)) deletePath(params, path);
  return sha256(canonicalJson({ ...rest, method: { ...config.method, params } })).slice(0, ID_LENGTH);
}

/** The method's plan hook (Method.plan) over its checked params, relative to the experiment file. */
function planned(
  name: string,
  params: Record<string, unknown>,
  file: string,
): { params: Record<string, unknown>; identity?: Record<string, unknown> } {
  const method = getMethod(name);
  if (!method.plan) return { params };
  try {
    return method.plan(params, { dir: dirname(resolve(file)) }) as {
      params: Record<string, unknown>;
      identity: Record<string, unknown>;
    };
  } catch (e) {
    throw e instanceof UserError ? new UserError(`${file}: ${e.message}`) : e;
  }
}

function deletePath(obj: Plain, path: string): void {
  const keys = path.split('.');
  const parent = keys.length === 1 ? obj : getPath(obj, keys.slice(0, -1).join('.'));
  if (parent && typeof parent === 'object') delete (parent as Record<string, unknown>)[keys[keys.length - 1]];
}

function grid(sweep: Record<string, unknown[]>): Array<Record<string, unknown>> {
  let points: Array<Record<string, unknown>> = [{}];
  for (const key of Object.keys(sweep).sort()) {
    points = points.flatMap((p) => sweep[key].map((v) => ({ ...p, [key]: v })));
  }
  return points;
}

/**
 * `where:` rules, in order: each whose `when` values all equal this point's sets its `set` keys.
 * A `when` key that no run has is an error (a typo would otherwise silently never match); a value
 * that no run has is not (a profile may narrow the sweep).
 */
function applyWhere(cfg: Plain, rules: Experiment['where'], file: string, seenKeys: Set<string>): void {
  rules.forEach((rule, i) => {
    for (const k of Object.keys(rule.when)) if (getPath(cfg, k) !== undefined) seenKeys.add(`${i}\0${k}`);
    if (!Object.entries(rule.when).every(([k, v]) => isDeepStrictEqual(getPath(cfg, k), v))) return;
    for (const [k, v] of Object.entries(rule.set)) {
      try {
        setPath(cfg, k, v);
      } catch (e) {
        throw new UserError(`${file}: where.${i}.set.${k}: ${(e as Error).message}`);
      }
    }
  });
}

/**
 * The world's outside files for the runs: the file's `checkpoints:` roles, checked against the
 * world's, with paths relative to the experiment file (as `include:` is).
 */
function worldFiles(exp: Experiment, file: string): WorldFiles {
  const roles = fileRoles(exp.world);
  const have = Object.keys(roles);
  for (const role of Object.keys(exp.checkpoints)) {
    if (!roles[role])
      throw new UserError(
        `${file}: checkpoints.${role}: world '${exp.world}' has no such role${have.length ? ` (have: ${have.join(', ')})` : ' (it loads no outside files)'}`,
      );
  }
  const given = Object.fromEntries(Object.entries(exp.checkpoints).map(([k, v]) => [k, resolve(dirname(file), v)]));
  return resolveWorldFiles(exp.world, given);
}

/**
 * One sweep point's experiment: the point's values set, `where:` rules applied, and validated
 * again (a sweep value can be wrong for its key: errors name the sweep point).
 */
function pointExperiment(
  exp: Experiment,
  base: Plain,
  point: Record<string, unknown>,
  file: string,
  seenKeys: Set<string>,
): Experiment {
  const cfg = structuredClone(base);
  for (const [k, v] of Object.entries(point)) setPath(cfg, k, v);
  applyWhere(cfg, exp.where, file, seenKeys);
  try {
    return validateExperiment({ ...cfg, seeds: exp.seeds }, file);
  } catch (e) {
    const label = Object.entries(point)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(', ');
    throw new UserError(`${(e as Error).message} (in sweep point ${label})`);
  }
}

/** A checked sweep point's runs, one per seed, each with its canonical config and id. */
function pointRuns(checked: Experiment, point: Record<string, unknown>, file: string, files: WorldFiles): PlannedRun[] {
  const method = getMethod(checked.method.name);
  const { params, identity } = planned(method.name, checked.method.params, file);
  const engine = resolveEngine(checked.engine, method, checked.precision, { gpusAsked: gpusAsked(checked), file });
  return checked.seeds.map((seed) => {
    const config: RunConfig = sortKeys({
      experiment: checked.name,
      experiment_version: checked.version,
      world: checked.world,
      method: { name: method.name, version: method.version, params },
      seed,
      metrics: [],
      point,
      ...(identity ? { identity } : {}),
      ...(engine ? { engine } : {}),
    }) as RunConfig;
    return {
      id: runId(config),
      config,
      backend: checked.backend,
      executor: checked.executor,
      settings: executorBlocks(checked),
      files,
    };
  });
}

export function expandExperiment(exp: Experiment, file: string): PlannedRun[] {
  const { sweep, seeds: _s, where, profiles: _p, description: _d, checkpoints: _c, ...base } = exp;
  const files = worldFiles(exp, file);
  for (const key of Object.keys(sweep)) {
    if (key === 'seeds' || key === 'sweep' || key.startsWith('sweep.')) {
      throw new UserError(`${file}: sweep.${key}: cannot be swept (use seeds: for seeds)`);
    }
  }
  const runs: PlannedRun[] = [];
  const seen = new Set<string>();
  const seenKeys = new Set<string>();
  for (const point of grid(sweep)) {
    const checked = pointExperiment(exp, base as Plain, point, file, seenKeys);
    for (const run of pointRuns(checked, point, file, files)) {
      if (seen.has(run.id)) continue; // a sweep that repeats a value yields the same run once
      seen.add(run.id);
      runs.push(run);
    }
  }
  where.forEach((rule, i) => {
    const missing = Object.keys(rule.when).find((k) => !seenKeys.has(`${i}\0${k}`));
    if (missing) throw new UserError(`${file}: where.${i}.when.${missing}: no run has this key`);
  });
  return runs;
}

/** Whether the file's executor asks its cluster for GPUs (engine: auto then picks torch). */
function gpusAsked(checked: Experiment): boolean {
  const executor = allExecutors().find((e) => e.name === checked.executor);
  if (!executor?.asksGpus || !executor.settings) return false;
  return executor.asksGpus(executorBlocks(checked)[executor.settings.key] ?? {});
}

/** Each executor's settings block of a checked experiment (the schema filled in its defaults). */
function executorBlocks(checked: Experiment): Record<string, Record<string, unknown>> {
  // The blocks are not in Experiment's static type (executorShape): read them by key.
  const raw = checked as unknown as Record<string, Record<string, unknown> | undefined>;
  return Object.fromEntries(
    allExecutors().flatMap((e) => (e.settings ? [[e.settings.key, raw[e.settings.key] ?? {}]] : [])),
  );
}
