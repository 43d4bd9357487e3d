/**
 * The runs of several experiment files: each file loaded and expanded, a run planned by two files
 * kept once (first wins). The CLI's run/plan/report/regress/hqs commands and the report pages
 * plan through this.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../errors.js';
import { loadExperiment, type LoadOptions } from './load.js';
import { expandExperiment, type PlannedRun } from './expand.js';

/** A folder given where an experiment file belongs is named as such (reading it would fail with EISDIR). */
export function refuseFolder(f: string): void {
  if (existsSync(f) && statSync(f).isDirectory()) {
    throw new UserError(`${f}: is a folder, expected an experiment file (.yaml)`);
  }
}

export function planAll(files: string[], opts: LoadOptions): PlannedRun[] {
  const runs: PlannedRun[] = [];
  const seen = new Set<string>();
  for (const f of files) {
    refuseFolder(f);
    const { experiment } = loadExperiment(f, opts);
    const origin = { file: resolve(f), profile: opts.profile ?? null, sets: opts.sets ?? [] };
    for (const r of expandExperiment(experiment, f)) {
      if (!seen.has(r.id)) runs.push({ ...r, origin });
      seen.add(r.id);
    }
  }
  return runs;
}
