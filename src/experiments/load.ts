/**
 * Reads an experiment file: safe YAML → includes resolved → profile and --set applied → validated.
 * Every failure is a UserError whose one line names the file and the key path at fault.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import type { z } from 'zod';
import { UserError, located } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import { deepMerge, getPath, isPlain, setPath, type Plain } from './merge.js';
import { applySet, refuseSweptSets } from './overrides.js';
import { parseYamlSafe } from './yaml.js';
import { experimentSchema, type Experiment } from './schema.js';
import { getMethod } from '../methods/registry.js';

export interface LoadOptions {
  sets?: string[];
  profile?: string;
}

export interface LoadedExperiment {
  file: string;
  experiment: Experiment;
  /** Files read, the including file last (recorded in every run for provenance). */
  sources: string[];
}

const show = (p: string) => relative(process.cwd(), p) || p;

function readRaw(path: string, chain: string[]): { value: Plain; sources: string[] } {
  const file = show(path);
  if (chain.includes(path)) {
    throw new UserError(`${file}: include: cycle ${[...chain, path].map(show).join(' → ')}`);
  }
  if (!existsSync(path)) {
    const from = chain.length ? `${show(chain[chain.length - 1])}: include: ` : '';
    throw new UserError(`${from}file not found: ${file}`);
  }
  if (statSync(path).isDirectory()) {
    const from = chain.length ? `${show(chain[chain.length - 1])}: include: ` : '';
    throw new UserError(`${from}${file}: is a folder, expected an experiment file (.yaml)`);
  }
  const parsed = parseYamlSafe(readFileSync(path, 'utf-8'), file);
  if (!isPlain(parsed)) throw new UserError(`${file}: the top level must be a mapping of keys`);
  // `extends:` is accepted as another spelling of `include:` (not both in one file).
  const { include: inc0, extends: ext, ...own } = parsed;
  if (inc0 !== undefined && ext !== undefined) {
    throw new UserError(`${file}: extends: use either include: or extends:, not both`);
  }
  const include = inc0 ?? ext;
  const includes = include === undefined ? [] : Array.isArray(include) ? include : [include];
  let merged: unknown = {};
  const sources: string[] = [];
  for (const [i, inc] of includes.entries()) {
    if (typeof inc !== 'string') {
      throw new UserError(`${file}: include${Array.isArray(include) ? `.${i}` : ''}: expected a file path`);
    }
    const sub = readRaw(resolve(dirname(path), inc), [...chain, path]);
    merged = deepMerge(merged, sub.value);
    sources.push(...sub.sources.filter((s) => !sources.includes(s)));
  }
  sources.push(path);
  return { value: deepMerge(merged, own) as Plain, sources };
}

/** The file's value with its includes merged (no profile, no overrides), and the files read. */
export function readWithIncludes(path: string): { value: Plain; sources: string[] } {
  return readRaw(resolve(path), []);
}

export function loadExperiment(path: string, opts: LoadOptions = {}): LoadedExperiment {
  const { file, value, sources } = readExperiment(path, opts);
  return { file: resolve(path), experiment: validateExperiment(value, file), sources };
}

interface ReadExperiment {
  file: string;
  value: Plain;
  sources: string[];
}

/** The file with its includes, profile and overrides applied, not yet validated. */
export function readExperiment(path: string, opts: LoadOptions = {}): ReadExperiment {
  const file = show(resolve(path));
  const { value, sources } = readRaw(resolve(path), []);
  if (opts.profile) applyProfile(value, opts.profile, file);
  for (const s of opts.sets ?? []) applySet(value, s);
  refuseSweptSets(value, opts.sets ?? [], file);
  return { file, value, sources };
}

function applyProfile(value: Plain, profile: string, file: string): void {
  const profiles = (value.profiles ?? {}) as Plain;
  const prof = profiles[profile];
  if (!isPlain(prof)) {
    throw new UserError(`${file}: profiles: no profile '${profile}'${didYouMean(profile, Object.keys(profiles))}`);
  }
  for (const [k, v] of Object.entries(prof)) {
    try {
      // A mapping merges into what is there (as includes do): a profile can narrow one sweep key.
      setPath(value, k, isPlain(v) ? deepMerge(getPath(value, k), v) : v);
    } catch (e) {
      throw new UserError(`${file}: profiles.${profile}.${k}: ${(e as Error).message}`);
    }
  }
}

export function validateExperiment(value: unknown, file: string): Experiment {
  const method = methodNameOf(value);
  // Name the method first: a discriminated union's own error would only say "invalid input".
  if (typeof method === 'string') getMethod(method, `${file}: method.name`);
  const schema = experimentSchema();
  const r = schema.safeParse(value);
  if (!r.success) throw new UserError(formatIssue(r.error, file, schema, value));
  return r.data as Experiment;
}

const methodNameOf = (value: unknown) => (isPlain(value) && isPlain(value.method) ? value.method.name : undefined);

/**
 * Every problem of an experiment value, one line each (`sdd validate`). An unknown method is named
 * once, in place of the union's errors under `method`.
 */
export function experimentIssues(value: unknown, file: string, schema: z.ZodType = experimentSchema()): string[] {
  const out: string[] = [];
  const method = methodNameOf(value);
  if (typeof method === 'string') {
    try {
      getMethod(method, `${file}: method.name`);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      out.push(e.message);
    }
  }
  const r = schema.safeParse(value);
  if (r.success) return out;
  const issues = (r.error.issues as Issue[]).filter((i) => out.length === 0 || i.path[0] !== 'method');
  return [...out, ...issues.flatMap((i) => issueLines(i, file, schema, value))];
}

type Issue = z.core.$ZodIssue;

/** The first problem as one line, with how many more there are and where to see them. */
function formatIssue(err: z.ZodError, file: string, schema: z.ZodType, value: unknown): string {
  const lines = (err.issues as Issue[]).flatMap((i) => issueLines(i, file, schema, value));
  const more = lines.length > 1 ? ` (and ${lines.length - 1} more: \`sdd validate\` lists every one)` : '';
  return lines[0] + more;
}

function issueLines(issue: Issue, file: string, schema: z.ZodType, value: unknown): string[] {
  const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
  if (issue.code === 'unrecognized_keys') {
    const known = keysAt(schema, path, value);
    return issue.keys.map((key) => located(file, [...path, key], `unknown key${didYouMean(key, known)}`));
  }
  if (issue.code === 'invalid_value' && 'values' in issue) {
    const got = valueAt(value, path);
    const options = (issue.values as unknown[]).map(String);
    const hint = didYouMean(String(got), options);
    return [located(file, path, `unknown value ${JSON.stringify(got)}${hint} (one of ${options.join(', ')})`)];
  }
  if (issue.code === 'invalid_type') {
    const got = valueAt(value, path);
    const what = got === undefined ? 'missing' : `got ${describe(got)}`;
    return [located(file, path, `expected ${issue.expected}, ${what}`)];
  }
  return [located(file, path, issue.message)];
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'string') return `string '${v.length > 40 ? v.slice(0, 40) + '…' : v}'`;
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${String(v)}`;
}

function valueAt(value: unknown, path: Array<string | number>): unknown {
  let cur = value;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return cur;
}

/** The keys an object schema accepts at `path` (through defaults, optionals and the method union). */
function keysAt(schema: z.ZodType, path: Array<string | number>, value: unknown): string[] {
  let cur: unknown = schema;
  let val: unknown = value;
  for (let i = 0; i <= path.length; i++) {
    cur = unwrap(cur, val);
    if (i === path.length) break;
    const shape = (cur as { shape?: Record<string, unknown> }).shape;
    if (!shape) return [];
    cur = shape[path[i] as string];
    val = isPlain(val) ? val[path[i] as string] : undefined;
  }
  const shape = (cur as { shape?: Record<string, unknown> })?.shape;
  return shape ? Object.keys(shape) : [];
}

function unwrap(s: unknown, val: unknown): unknown {
  let cur = s as { def?: { type: string; innerType?: unknown; options?: unknown[] } } | undefined;
  for (let guard = 0; cur?.def && guard < 10; guard++) {
    const d = cur.def;
    if (d.type === 'default' || d.type === 'optional' || d.type === 'nullable') cur = d.innerType as typeof cur;
    else if (d.type === 'union' && Array.isArray(d.options)) {
      const name = isPlain(val) ? val.name : undefined;
      const hit = d.options.find((o) => {
        const lit = (o as { shape?: { name?: { def?: { values?: unknown[] } } } }).shape?.name?.def?.values;
        return lit?.includes(name);
      });
      cur = (hit ?? d.options[0]) as typeof cur;
    } else break;
  }
  return cur;
}
