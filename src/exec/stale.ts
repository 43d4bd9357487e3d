/**
 * Run ids hash the experiment's settings, not the world's weights. So when a model's weights
 * change (a retrained zoo, a new checkpoint), a finished run under the same id holds numbers from
 * the old weights: it must run again, not be skipped.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PlannedRun } from '../experiments/expand.js';
import type { RunStore } from '../runs/store.js';
import { worldFingerprint } from '../world/registry.js';
import type { WorldFiles } from '../world/files.js';
import { canonicalJson } from '../util/hash.js';
import { UserError } from '../errors.js';

const current = new Map<string, Record<string, string> | null>();

/** A world's fingerprint with the run's outside files (the same world may be pointed at other checkpoints). */
function fingerprintOf(world: string, files: WorldFiles): Record<string, string> | null {
  const key = `${world}\0${canonicalJson(files)}`;
  if (!current.has(key)) {
    let now: Record<string, string> | null;
    try {
      now = worldFingerprint(world, files);
    } catch (e) {
      // Checkpoints not on this machine (sdd plan / status away from them): the weights cannot be
      // compared, so finished runs count as finished; `sdd run` itself stops on the missing files.
      if (!(e instanceof UserError)) throw e;
      now = null;
    }
    current.set(key, now);
  }
  return current.get(key) ?? null;
}

/** World models whose weights differ from those a finished run recorded (sorted; [] if none or not finished). */
export function modelsChanged(store: RunStore, run: PlannedRun): string[] {
  const path = join(store.dir(run.id), 'result.json');
  if (!existsSync(path)) return [];
  let recorded: unknown;
  try {
    recorded = (JSON.parse(readFileSync(path, 'utf-8')) as { metrics?: { models?: unknown } }).metrics?.models;
  } catch {
    return [];
  }
  // Runs of methods that load no world model (toy_fit) record none: never stale.
  if (!recorded || typeof recorded !== 'object') return [];
  const now = fingerprintOf(run.config.world, run.files);
  if (!now) return [];
  return Object.entries(recorded as Record<string, unknown>)
    .filter(([name, sha]) => now[name] !== sha)
    .map(([name]) => name)
    .sort();
}
