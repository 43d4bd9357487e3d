/**
 * HQS scans are deterministic given (models, prompt, settings, seed) and cost more than a short
 * distillation: they are cached under .cache/hqs/<key>.json (atomic writes; a torn or stale file
 * is recomputed), so an ablation's strategies share one scan.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../runs/env.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { canonicalJson, sha256 } from '../util/hash.js';
import type { HqsScan } from './hqs.js';

const DIR = join(process.env.SDD_CACHE ?? join(PROJECT_ROOT, '.cache'), 'hqs');

export function cachedHqs(key: unknown, compute: () => HqsScan): HqsScan {
  const file = join(DIR, `${sha256(canonicalJson(key)).slice(0, 16)}.json`);
  if (existsSync(file)) {
    try {
      const hit = JSON.parse(readFileSync(file, 'utf-8')) as { key: unknown; scan: HqsScan };
      if (canonicalJson(hit.key) === canonicalJson(key)) return hit.scan;
    } catch {
      // unreadable: recompute below
    }
  }
  const scan = compute();
  mkdirSync(DIR, { recursive: true });
  writeJsonAtomic(file, { key, scan });
  return scan;
}
