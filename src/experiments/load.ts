/**
 * Reads an experiment file: safe YAML → includes resolved → profile and --set applied → validated.
 * Every failure is a UserError whose one line names the file and the key path at fault.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { UserError, located } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import { deepMerge, getPath, isPlain, setPath, type Plain } from './merge.js';
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

/** YAML with the core schema only: no tags that build objects or run code, no duplicate keys. */
export function parseYamlSafe(text: string, file: string): unknown {
  const doc = parseDocument(text, { schema: 'core', uniqueKeys: true, merge: false, prettyErrors: true });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    const pos = problem.linePos?.[0];
    const at = pos ? `line ${pos.line}, column ${pos.col}` : 'YAML';
    // prettyErrors computes linePos; its message repeats the position, which we drop.
    const msg = problem.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    throw new UserError(`${file}: ${at}: ${msg}`);
  }
  return doc.toJS({ maxAliasCount: 50 });
}

function readRaw(path: string, chain: string[]): { value: Plain; sources: string[] } {
  const file = show(path);
  if (chain.includes(path)) {
    throw new UserError(`${file}: include: cycle ${[...chain, path].map(show).join(' → ')}`);
  }
  if (!existsSync(path)) {
    const from = chain.length ? `${show(chain[chain.length - 1])}: include: ` : '';
    throw new UserError(`${from}file not found: ${file}`);
  }
  const parsed = parseYamlSafe(readFileSync(path, 'utf-8'), file);
  if (!isPlain(parsed)) throw new UserError(`${file}: the top level must be a mapping of keys`);
  // `extends:` is accepted as another spelling of `include:` (not both in one file).
  const { include: inc0, extends: ext, ...own } = parsed;
  if (inc0 !== undefined && ext !== undefined) throw new UserError(`${file}: extends: use either include: or extends:, not both`);
  const include = inc0 ?? ext;
  const includes = include === undefined ? [] : Array.isArray(include) ? include : [include];
  let merged: unknown = {};
  const sources: string[] = [];
  for (const [i, inc] of includes.entries()) {
    if (typeof inc !== 'string') throw new UserError(`${file}: include${Array.isArray(include) ? `.${i}` : ''}: expected a file path`);
    const sub = readRaw(resolve(dirname(path), inc), [...chain, path]);
    merged = deepMerge(merged, sub.value);
    sources.push(...sub.sources.filter((s) => !sources.includes(s)));
  }
  sources.push(path);
  return { value: deepMerge(merged, own) as Plain, sources };
}

/** `a.b.c=value`: value is read as YAML, so numbers, booleans and `[1, 2]` lists work. */
export function applySet(config: Plain, set: string, origin = '--set'): void {
  const eq = set.indexOf('=');
  if (eq <= 0) throw new UserError(`${origin}: expected KEY=VALUE, got '${set}'`);
  const key = set.slice(0, eq).trim();
  const value = parseYamlSafe(set.slice(eq + 1), `${origin} ${key}`);
  try {
    setPath(config, key, value);
  } catch (e) {
    throw new UserError(`${origin}: ${key}: ${(e as Error).message}`);
  }
}

export function loadExperiment(path: string, opts: LoadOptions = {}): LoadedExperiment {
  const abs = resolve(path);
  const file = show(abs);
  const { value, sources } = readRaw(abs, []);
  if (opts.profile) {
    const profiles = (value.profiles ?? {}) as Plain;
    const prof = profiles[opts.profile];
    if (!isPlain(prof)) {
      throw new UserError(`${file}: profiles: no profile '${opts.profile}'${didYouMean(opts.profile, Object.keys(profiles))}`);
    }
    for (const [k, v] of Object.entries(prof)) {
      try {
        // A mapping merges into what is there (as includes do): a profile can narrow one sweep key.
        setPath(value, k, isPlain(v) ? deepMerge(getPath(value, k), v) : v);
      } catch (e) {
        throw new UserError(`${file}: profiles.${opts.profile}.${k}: ${(e as Error).message}`);
      }
    }
  }
  for (const s of opts.sets ?? []) applySet(value, s);
  return { file: abs, experiment: validateExperiment(value, file), sources };
}

export function validateExperiment(value: unknown, file: string): Experiment {
  const method = isPlain(value) && isPlain(value.method) ? value.method.name : undefined;
  // Name the method first: a discriminated union's own error would only say "invalid input".
  if (typeof method === 'string') getMethod(method, `${file}: method.name`);
  const schema = experimentSchema();
  const r = schema.safeParse(value);
  if (!r.success) throw new UserError(formatIssue(r.error, file, schema, value));
  return r.data as Experiment;
}

type Issue = z.core.$ZodIssue;

export function formatIssue(err: z.ZodError, file: string, schema: z.ZodType, value: unknown): string {
  const issue = err.issues[0] as Issue;
  const more = err.issues.length > 1 ? ` (and ${err.issues.length - 1} more)` : '';
  const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
  if (issue.code === 'unrecognized_keys') {
    const known = keysAt(schema, path, value);
    const key = issue.keys[0];
    return located(file, [...path, key], `unknown key${didYouMean(key, known)}`) + more;
  }
  if (issue.code === 'invalid_value' && 'values' in issue) {
    const got = valueAt(value, path);
    const options = (issue.values as unknown[]).map(String);
    return located(file, path, `unknown value ${JSON.stringify(got)}${didYouMean(String(got), options)} (one of ${options.join(', ')})`) + more;
  }
  if (issue.code === 'invalid_type') {
    const got = valueAt(value, path);
    const what = got === undefined ? 'missing' : `got ${describe(got)}`;
    return located(file, path, `expected ${issue.expected}, ${what}`) + more;
  }
  return located(file, path, issue.message) + more;
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
