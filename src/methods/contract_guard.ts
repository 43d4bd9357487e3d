/**
 * What a method process may write in its run folder: contract/out/ and nothing else. The harness
 * records the folder before starting it and compares after it exits; a file it added elsewhere
 * (a result.json of its own, say) is removed and a small file it changed is put back, so nothing
 * it wrote there is ever read as the run's. Writes outside the run folder are not seen: this is a
 * check against mistakes, not a sandbox.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/**
 * Written by the harness while the method runs (the lock; origin.json and world.json, which
 * another `sdd run` planning the same run rewrites): not the method's doing.
 */
const LIVE = new Set([
  'log.txt',
  'progress.json',
  'metrics.jsonl',
  'output.txt',
  'lock',
  'origin.json',
  'world.json',
  join('contract', 'out'),
]);
/** Files up to this size are kept in memory, so that a changed one can be put back. */
const KEEP_BYTES = 1 << 20;

interface Entry {
  size: number;
  mtimeMs: number;
  bytes: Buffer | null;
}

export type Snapshot = Map<string, Entry>;

function walk(root: string, dir: string, out: Snapshot): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const rel = relative(root, path);
    if (LIVE.has(rel)) continue;
    const st = lstatSync(path);
    if (st.isDirectory()) walk(root, path, out);
    else
      out.set(rel, {
        size: st.size,
        mtimeMs: st.mtimeMs,
        bytes: st.isFile() && st.size <= KEEP_BYTES ? readFileSync(path) : null,
      });
  }
}

export function snapshot(runDir: string): Snapshot {
  const out: Snapshot = new Map();
  walk(runDir, runDir, out);
  return out;
}

/** Undoes what it can of the method's writes outside contract/out; returns what it found ("result.json (removed)"). */
export function restore(runDir: string, before: Snapshot): string[] {
  const after = snapshot(runDir);
  const found: string[] = [];
  for (const [rel, e] of after) {
    const was = before.get(rel);
    if (!was) {
      rmSync(join(runDir, rel), { force: true });
      found.push(`${rel} (removed)`);
    } else if (was.size !== e.size || was.mtimeMs !== e.mtimeMs) {
      found.push(putBack(runDir, rel, was, 'changed'));
    }
  }
  for (const [rel, was] of before)
    if (!after.has(rel) && !existsSync(join(runDir, rel))) found.push(putBack(runDir, rel, was, 'deleted'));
  return found;
}

function putBack(runDir: string, rel: string, was: Entry, what: string): string {
  if (!was.bytes) return `${rel} (${what})`;
  rmSync(join(runDir, rel), { force: true }); // a link put in its place goes, not its target
  mkdirSync(dirname(join(runDir, rel)), { recursive: true });
  writeFileSync(join(runDir, rel), was.bytes);
  return `${rel} (${what}, restored)`;
}
