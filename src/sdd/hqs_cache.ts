/**
 * HQS scans are deterministic given (models, prompt, settings, seed) and cost more than a short
 * distillation: they are cached under .cache/hqs/<key>.json (atomic writes; a torn or stale file
 * is recomputed), so an ablation's strategies share one scan. Sharing must not make τ_train depend
 * on run order: a hit returns the original scan's measured time with it, and the run is charged
 * that time (marked cached). The key is everything the scan depends on, including HQS_CODE_VERSION.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../util/env.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { canonicalJson, sha256 } from '../util/hash.js';
import type { HqsScan } from './hqs.js';

/**
 * Bump when the scan's computation changes (v2: per-image statistics, VAE sample, per-image top-k;
 * v3: `seconds` calibrated under the device lock (#30), so no wall-timed scan is charged any more).
 */
export const HQS_CODE_VERSION = 3;

export interface CachedScan {
  scan: HqsScan;
  /** True when the scan came from the cache (its `seconds` are the original computation's). */
  cached: boolean;
}

function cacheDir(): string {
  return join(process.env.SDD_CACHE ?? join(PROJECT_ROOT, '.cache'), 'hqs');
}

export function hqsCacheFile(key: unknown, code = HQS_CODE_VERSION): string {
  return join(cacheDir(), `${sha256(canonicalJson({ code, key })).slice(0, 16)}.json`);
}

/** The cached scan for `key`, or null (none, torn, or of another key). */
function peekHqs(key: unknown, code = HQS_CODE_VERSION): HqsScan | null {
  const file = hqsCacheFile(key, code);
  if (!existsSync(file)) return null;
  try {
    const hit = JSON.parse(readFileSync(file, 'utf-8')) as { key: unknown; scan: HqsScan };
    if (canonicalJson(hit.key) === canonicalJson({ code, key }) && Number.isFinite(hit.scan?.seconds)) return hit.scan;
  } catch {
    // unreadable: as if absent
  }
  return null;
}

/** The scan for `key`, from the cache or computed (and stored). `code` is for tests. */
export async function cachedHqs(
  key: unknown,
  compute: () => Promise<HqsScan>,
  code = HQS_CODE_VERSION,
): Promise<CachedScan> {
  const hit = peekHqs(key, code);
  if (hit) return { scan: hit, cached: true };
  const file = hqsCacheFile(key, code);
  const full = { code, key };
  const scan = await compute();
  mkdirSync(cacheDir(), { recursive: true });
  writeJsonAtomic(file, { key: full, scan });
  return { scan, cached: false };
}
