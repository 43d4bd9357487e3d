/**
 * `sdd run`'s executor flags, collected from the executor registry: --executor, --detach, and each
 * executor's own flags (src/exec/executors.ts ExecutorSettings), checked by that executor's schema
 * exactly as the experiment files' block under its key.
 */
import type { Options } from 'yargs';
import { UserError } from '../errors.js';
import type { PlannedRun } from '../experiments/expand.js';
import { allExecutors, executorNames, getExecutor, type Executor } from '../exec/index.js';

export interface ExecutorArgs {
  executor?: string;
  detach: boolean;
  [flag: string]: unknown;
}

/** The yargs options: --executor, --detach and every executor's flags. */
export function executorOptions(): Record<string, Options> {
  const all = allExecutors();
  const queued = all.filter((e) => e.detachable).map((e) => e.name);
  const opts: Record<string, Options> = {
    executor: {
      type: 'string',
      choices: executorNames(),
      describe: `where runs execute: ${all.map((e) => `${e.name} = ${e.describe}`).join('; ')} (default: the files' executor:, else local)`,
    },
    detach: {
      type: 'boolean',
      default: false,
      describe: `${queued.join(', ')}: submit and return; \`sdd status FILES\` shows where the runs stand`,
    },
  };
  for (const e of all) {
    for (const [flag, f] of Object.entries(e.settings?.flags ?? {})) {
      if (flag in opts) throw new Error(`executor ${e.name}: flag --${flag} is already taken`);
      opts[flag] = { type: f.type, array: f.array, describe: f.describe };
    }
  }
  return opts;
}

/** The chosen executor's settings given as flags, checked by its schema; errors name the flag. */
export function executorFlags(e: Executor, a: ExecutorArgs): Record<string, unknown> {
  const s = e.settings;
  const given = Object.entries(s?.flags ?? {}).filter(([flag]) => a[flag] !== undefined);
  for (const other of allExecutors()) {
    if (other === e) continue;
    const stray = Object.keys(other.settings?.flags ?? {}).find(
      (flag) => a[flag] !== undefined && !(flag in (s?.flags ?? {})),
    );
    if (stray) throw new UserError(`--${stray}: only with --executor ${other.name}`);
  }
  if (!s) return {};
  const raw = Object.fromEntries(given.map(([flag, f]) => [f.setting, a[flag]]));
  const r = s.schema().safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const key = String(issue.path[0]);
  const flag = given.find(([, f]) => f.setting === key)?.[0] ?? key;
  throw new UserError(`--${flag}: ${issue.message} (got ${JSON.stringify(raw[key])})`);
}

/** The flag wins; else the files' `executor:` (they must agree); else local. */
export function executorOf(flag: string | undefined, runs: PlannedRun[]): Executor {
  if (flag !== undefined) return getExecutor(flag);
  const named = [...new Set(runs.map((r) => r.executor).filter((x): x is string => x !== undefined))];
  if (named.length > 1) {
    const names = named.join(', ');
    throw new UserError(`the experiment files name different executors (${names}): choose one with --executor`);
  }
  return getExecutor(named[0] ?? 'local');
}
