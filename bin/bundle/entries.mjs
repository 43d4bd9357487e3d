// The bundle's entry points: the CLI, the GPU checks, and the extra entries found in the sources
// (tests left out):
// - worker entries: every `new URL('./x.mjs', import.meta.url)`; a non-script target is copied as data;
// - task modules: a module whose own URL escapes (`export const TASKS = import.meta.url`, for a pool's
//   workers to import) must exist as a file of its own: it is bundled to its path with .mjs, and
//   its import.meta.url names that file.
// Every use of import.meta.url other than new URL(lit, ·), fileURLToPath(·) and createRequire(·)
// counts as escaping. With code splitting each module still exists once per thread, so a task
// module imported by a worker registers into the same registry as the worker's own modules.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { die, rel, ROOT, walk } from './common.mjs';

/** Where worker entries are looked for (new URL('./x.mjs', import.meta.url) in these trees). */
const SOURCE_DIRS = ['src', 'datasets', 'baselines'];
const URL_REF = /new\s+URL\(\s*(['"`])(\.\.?\/[^'"`$]+?)\1\s*,\s*import\.meta\.url\s*\)/g;
const PATH_USE = /\b(?:createRequire|fileURLToPath)\(\s*import\.meta\.url\s*\)/g;
const stripComments = (src) => src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)\/\/.*$/gm, '$1');
/** Entries named by hand: the CLI, and the GPU checks (gpu-check.sh) that run from the bundle too. */
const NAMED = [
  ['bin/sdd.mjs', 'sdd'],
  ['bench/gpu.ts', 'bench/gpu'],
  ['bench/attention.ts', 'bench/attention'],
  ['bench/full_parity.ts', 'bench/full_parity'],
  ['bench/stylegan2_parity.ts', 'bench/stylegan2_parity'],
  ['bench/paper_time.ts', 'bench/paper_time'],
  ['bench/webgpu_counts.ts', 'bench/webgpu_counts'],
  ['test/webgpu_attention.test.ts', 'test/webgpu_attention.test'],
  ['test/webgpu_conformance.test.ts', 'test/webgpu_conformance.test'],
  ['test/webgpu_conv_backprop.test.ts', 'test/webgpu_conv_backprop.test'],
];

/**
 * outOf: source file → its output path relative to OUT (without extension), found entries first;
 * urlAssets: the non-script files named by new URL(…, import.meta.url), copied as data.
 */
export function findEntries() {
  const outOf = new Map();
  const urlAssets = new Set();
  for (const dir of SOURCE_DIRS) {
    for (const file of walk(join(ROOT, dir))) {
      if (!/\.(m|c)?[jt]s$/.test(file) || /\.test\.[mc]?[jt]s$/.test(file) || file.endsWith('.d.ts')) continue;
      scanSource(file, outOf, urlAssets);
    }
  }
  for (const [src, out] of NAMED) outOf.set(join(ROOT, ...src.split('/')), out);
  const seen = new Map();
  for (const [src, out] of outOf) {
    if (seen.has(out)) die(`${rel(src)} and ${rel(seen.get(out))} would both be bundled to ${out}.mjs`);
    seen.set(out, src);
  }
  return { outOf, urlAssets };
}

/** One source file's worker entries and assets, and itself if its URL escapes. */
function scanSource(file, outOf, urlAssets) {
  const code = stripComments(readFileSync(file, 'utf-8'));
  for (const m of code.matchAll(URL_REF)) {
    const target = resolve(dirname(file), m[2]);
    if (!existsSync(target)) die(`${rel(file)} refers to ${m[2]}, which does not exist`);
    if (/\.(mjs|js)$/.test(target)) outOf.set(target, rel(target).replace(/\.m?js$/, ''));
    else if (/\.(cjs|[mc]?ts)$/.test(target))
      die(`${rel(file)}: worker entry ${m[2]} must be an .mjs file (a .ts or .cjs one cannot run at its own path)`);
    else urlAssets.add(target);
  }
  if (/\bimport\.meta\.url\b/.test(code.replace(URL_REF, '').replace(PATH_USE, ''))) {
    outOf.set(file, rel(file).replace(/\.[mc]?[jt]s$/, ''));
  }
}
