/**
 * `sdd status FILE` plans the runs of one profile and one set of overrides; runs of the same file
 * finished under others would look "not started". These hints name them: by planning the file
 * under each of its other profiles (which finds runs made before the store recorded how a run was
 * planned), and from the runs' own origin.json (which also knows their --set overrides).
 */
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import type { RunOrigin } from '../experiments/expand.js';
import { loadExperiment, type LoadOptions } from '../experiments/load.js';
import { planAll } from '../experiments/plan.js';
import type { RunStore } from '../runs/store.js';
import { readJson } from '../util/atomic.js';

/** The flags that plan it again: `--profile quick --set 'a=1'` (empty for the file as it is). */
const flagsOf = (profile: string | null | undefined, sets: string[]) =>
  [...(profile ? [`--profile ${profile}`] : []), ...sets.map((s) => `--set '${s}'`)].join(' ');

/** Plans that fail (a --set the other profile's sweep overrides, say) have nothing to show. */
function plannedIds(file: string, opts: LoadOptions): string[] {
  try {
    return planAll([file], opts).map((r) => r.id);
  } catch (e) {
    if (e instanceof UserError) return [];
    throw e;
  }
}

/** The file's profile names; none when it loads only with the overrides given (they may complete it). */
function profilesOf(file: string): string[] {
  try {
    return Object.keys(loadExperiment(file, {}).experiment.profiles);
  } catch (e) {
    if (e instanceof UserError) return [];
    throw e;
  }
}

/** Finished run id → how it was planned, for one file, leaving out the plan asked about. */
function finishedElsewhere(file: string, opts: LoadOptions, store: RunStore): Map<string, string> {
  const current = new Set(plannedIds(file, opts));
  const found = new Map<string, string>();
  const note = (id: string, how: string) => {
    if (!current.has(id) && !found.has(id) && store.isFinished(id)) found.set(id, how);
  };
  const profiles = profilesOf(file);
  for (const p of [undefined, ...profiles].filter((x) => x !== opts.profile)) {
    for (const id of plannedIds(file, { ...opts, profile: p })) note(id, flagsOf(p, opts.sets ?? []));
  }
  for (const id of store.ids()) {
    const o = readJson<RunOrigin>(join(store.dir(id), 'origin.json'));
    if (o && o.file === resolve(file)) note(id, flagsOf(o.profile, o.sets));
  }
  return found;
}

/** One line per file and way of planning: `FILE: 2 finished under --profile quick`. */
export function profileHints(files: string[], opts: LoadOptions, store: RunStore): string[] {
  const lines: string[] = [];
  for (const f of files) {
    const counts = new Map<string, number>();
    for (const how of finishedElsewhere(f, opts, store).values()) counts.set(how, (counts.get(how) ?? 0) + 1);
    for (const [how, n] of counts) {
      const under = how || 'no --profile or --set';
      lines.push(`${f}: ${n} finished under ${under} (\`sdd status ${f}${how ? ` ${how}` : ''}\` shows them)`);
    }
  }
  return lines;
}
