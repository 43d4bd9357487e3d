/**
 * Where `sdd regress` keeps each side's runs: <store>/.regress/<hash of the side's ref>/, a run store
 * of its own (run ids do not see model weights, so a side with other weights cannot share the main
 * store), with side.json saying which ref it is. The dot keeps the folder out of the main store's
 * run list (and out of `sdd gc`); `sdd ls` lists the sides' runs through regressRuns.
 */
import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { RunStore, type RunSummary } from '../runs/store.js';
import { readJson, writeJsonAtomic } from '../util/atomic.js';
import { sha256 } from '../util/hash.js';

const SIDES_DIR = '.regress';

export interface SideInfo {
  ref: string;
  file: string;
  profile: string | null;
}

/** A side's store folder; one left at the old place (<store>/regress/<hash>) is moved here. */
export function sideStore(root: string, ref: string): string {
  const hash = sha256(ref).slice(0, 12);
  const dir = join(root, SIDES_DIR, hash);
  const old = join(root, 'regress', hash);
  if (!existsSync(dir) && existsSync(old)) {
    mkdirSync(join(root, SIDES_DIR), { recursive: true });
    renameSync(old, dir);
  }
  return dir;
}

/** Records which ref a side's store holds (`sdd ls` shows it). */
export function recordSide(dir: string, info: SideInfo): void {
  writeJsonAtomic(join(dir, 'side.json'), info);
}

/** Every side store under the store root, with its ref ('?' when it has no side.json). */
function regressSides(root: string): Array<{ dir: string; ref: string }> {
  const base = join(root, SIDES_DIR);
  if (!existsSync(base)) return [];
  return readdirSync(base, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => ({ dir: join(base, d.name), ref: readJson<SideInfo>(join(base, d.name, 'side.json'))?.ref ?? '?' }));
}

/** The runs of every regress side, their experiment shown as "<name> (regress <ref>)". */
export function regressRuns(root: string): RunSummary[] {
  return regressSides(root).flatMap(({ dir, ref }) =>
    new RunStore(dir)
      .list()
      .map((s) =>
        s.config ? { ...s, config: { ...s.config, experiment: `${s.config.experiment} (regress ${ref})` } } : s,
      ),
  );
}
