/**
 * `sdd validate`: every problem of every file, not just the first. A file that is only meant to be
 * included (such as experiments/paper/prompts.yaml: a sweep and profiles, no name or method) is
 * checked as a fragment when it is a fragment: another file given includes it (directly or
 * through other includes) and it lacks a key every experiment needs (`name:` or `method:`).
 * A fragment's keys must all be known and its values of the right type; the values that need the
 * rest of an experiment (a sweep of method parameters, for instance) are checked in the files that
 * include it, which are validated as whole experiments. A file given alone that lacks those keys
 * is an experiment with errors, as before.
 */
import { resolve } from 'node:path';
import { UserError } from '../errors.js';
import { expandExperiment } from './expand.js';
import { experimentIssues, readExperiment, readWithIncludes, validateExperiment, type LoadOptions } from './load.js';
import { isPlain, type Plain } from './merge.js';
import { refuseFolder } from './plan.js';
import { experimentSchema } from './schema.js';

export interface FileCheck {
  file: string;
  /** Runs it expands to (0 for a fragment or a file with errors). */
  runs: number;
  /** For a fragment: the first file given that includes it. */
  fragmentOf?: string;
  errors: string[];
}

const REQUIRED = ['name', 'method'] as const;

/** Each bad-input error as its message; anything else (a bug) is thrown on. */
function caught(fn: () => void): string[] {
  try {
    fn();
    return [];
  } catch (e) {
    if (e instanceof UserError) return [e.message];
    throw e;
  }
}

/** File (absolute) → the first given file that includes it. */
function includers(files: string[]): Map<string, string> {
  const by = new Map<string, string>();
  for (const f of files) {
    let sources: string[] = [];
    caught(() => (sources = readWithIncludes(f).sources));
    for (const s of sources.slice(0, -1)) if (!by.has(s)) by.set(s, f);
  }
  return by;
}

function checkExperiment(file: string, opts: LoadOptions): FileCheck {
  let read: { file: string; value: Plain } | undefined;
  const loadErrors = caught(() => (read = readExperiment(file, opts)));
  if (!read) return { file, runs: 0, errors: loadErrors };
  const errors = experimentIssues(read.value, read.file);
  if (REQUIRED.some((k) => read!.value[k] === undefined) && errors.length) {
    errors[0] += ' (an include fragment? validate it together with a file that includes it)';
  }
  if (errors.length) return { file, runs: 0, errors };
  let runs = 0;
  const { value, file: shown } = read;
  const expandErrors = caught(() => (runs = expandExperiment(validateExperiment(value, shown), file).length));
  return { file, runs, errors: expandErrors };
}

function checkFragment(file: string, includer: string): FileCheck {
  let value: Plain | undefined;
  const errors = caught(() => (value = readWithIncludes(file).value));
  if (!value) return { file, runs: 0, fragmentOf: includer, errors };
  const own = { ...value };
  // A method block without its name is checked in the including files, where the name is known.
  if (isPlain(own.method) && own.method.name === undefined) delete own.method;
  return { file, runs: 0, fragmentOf: includer, errors: experimentIssues(own, file, experimentSchema().partial()) };
}

function isFragment(file: string): boolean {
  let value: Plain | undefined;
  caught(() => (value = readWithIncludes(file).value));
  return value !== undefined && REQUIRED.some((k) => value![k] === undefined);
}

export function checkFiles(files: string[], opts: LoadOptions): FileCheck[] {
  const by = includers(files);
  return files.map((f) => {
    const folder = caught(() => refuseFolder(f));
    if (folder.length) return { file: f, runs: 0, errors: folder };
    const includer = by.get(resolve(f));
    return includer !== undefined && isFragment(f) ? checkFragment(f, includer) : checkExperiment(f, opts);
  });
}
