/**
 * Worlds by name (experiment files say `world: toyfaces`), from the list in datasets/index.ts:
 * the one place in src/ below the cli that imports the worlds. Importing this module also hands
 * each world's file roles and FID extractors to their registries. Worlds load once per process.
 */
import { UserError } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import { registerExtractor } from '../metrics/features.js';
import * as worlds from '../../datasets/index.js';
import type { World, WorldDef } from './types.js';
import { registerFileRoles, worldFiles, type WorldFiles } from './files.js';

const DEFS = new Map<string, WorldDef>();

/** Adds a world of the list below (datasets/index.ts). A duplicate name is a bug. */
function registerWorld(def: WorldDef): void {
  if (DEFS.has(def.name)) throw new Error(`world '${def.name}' is already registered`);
  DEFS.set(def.name, def);
  if (def.roles) registerFileRoles(def.name, def.roles);
  for (const [id, e] of Object.entries(def.extractors ?? {})) registerExtractor(id, e);
}

// Every export of datasets/index.ts is a world (typed: anything else fails to compile here).
const WORLDS: readonly WorldDef[] = Object.values(worlds);
for (const def of WORLDS) registerWorld(def);

const loaded = new Map<string, World>();

export function worldNames(): string[] {
  return [...DEFS.keys()].sort();
}

function worldDef(name: string): WorldDef {
  const def = DEFS.get(name);
  const names = worldNames();
  if (!def) throw new UserError(`world: unknown world '${name}'${didYouMean(name, names)} (have: ${names.join(', ')})`);
  return def;
}

/** The world, loaded with the files of this process (files.ts: the run's `checkpoints:`). */
export function loadWorld(name: string): World {
  let w = loaded.get(name);
  if (!w) loaded.set(name, (w = worldDef(name).load(worldFiles())));
  return w;
}

/** The world's current model hashes (name → SHA-256) with these files, or null for an unknown world. */
export function worldFingerprint(name: string, files: WorldFiles = worldFiles()): Record<string, string> | null {
  return DEFS.get(name)?.fingerprint(files) ?? null;
}
