/** Worlds by name (experiment files say `world: toyfaces`); loaded once per process. */
import { UserError } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import { loadToyfacesWorld, toyfacesFingerprint } from '../../datasets/toyfaces/world_models.js';
import { loadRealWorld, realFingerprint } from '../../datasets/real/world.js';
import { loadPaperRandomWorld, loadPaperWorld, paperFingerprint, paperRandomFingerprint } from '../../datasets/paper/world.js';
// Each world's FID feature extractor, by name (sdd fid --features).
import '../../datasets/toyfaces/extractor.js';
import type { World } from './types.js';
import { worldFiles, type WorldFiles } from './files.js';

/** Worlds that load outside files get them from files.ts (the run's `checkpoints:`). */
const LOADERS: Record<string, () => World> = {
  toyfaces: loadToyfacesWorld,
  real: () => loadRealWorld(worldFiles()),
  paper: () => loadPaperWorld(worldFiles()),
  'paper-random': () => loadPaperRandomWorld('full'),
  'paper-random-tiny': () => loadPaperRandomWorld('tiny'),
};
/** Each world's model fingerprint without loading it (cards, or file hashes): cheap enough for planning. */
const FINGERPRINTS: Record<string, (files: WorldFiles) => Record<string, string>> = {
  toyfaces: toyfacesFingerprint,
  real: realFingerprint,
  paper: paperFingerprint,
  'paper-random': () => paperRandomFingerprint('full'),
  'paper-random-tiny': () => paperRandomFingerprint('tiny'),
};
const loaded = new Map<string, World>();

export function loadWorld(name: string): World {
  const load = LOADERS[name];
  if (!load) throw new UserError(`world: unknown world '${name}'${didYouMean(name, Object.keys(LOADERS))} (have: ${Object.keys(LOADERS).join(', ')})`);
  let w = loaded.get(name);
  if (!w) loaded.set(name, (w = load()));
  return w;
}

export const WORLD_NAMES = Object.keys(LOADERS);

/** The world's current model hashes (name → SHA-256) with these files, or null for an unknown world. */
export function worldFingerprint(name: string, files: WorldFiles = worldFiles()): Record<string, string> | null {
  return FINGERPRINTS[name]?.(files) ?? null;
}
