// What every part of `make bundle` (bin/bundle.mjs) shares: the repository root, the packages
// left external, file walking and copying, and the one-line failure.
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/**
 * Loaded at run time from DIR/node_modules or not at all: each backend's own (the Dawn addon, the
 * optional tfjs-node packages; src/backend/choices.ts, read without loading tfjs) and piscina's
 * optional thread-priority addon.
 */
const { BACKENDS } = await tsImport('../../src/backend/choices.ts', import.meta.url);
export const EXTERNAL = [...new Set([...BACKENDS.flatMap((b) => b.bundleExternal), '@napi-rs/nice'])];
/** Only this platform's Dawn build fits the size budget. */
export const DAWN_PLATFORM = 'linux-x64';

export function die(msg) {
  process.stderr.write(`bundle: ${msg}\n`);
  process.exit(1);
}

/** `a/b/c` whatever the OS, relative to `from` (the repository by default). */
export const rel = (p, from = ROOT) => relative(from, p).split(sep).join('/');

/** The files under dir; node_modules and dot folders are skipped unless `everything`. */
export function walk(dir, everything = false, out = []) {
  if (!existsSync(dir)) return out;
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) {
      if (everything || (d.name !== 'node_modules' && !d.name.startsWith('.'))) walk(p, everything, out);
    } else out.push(p);
  }
  return out;
}

/** Copies src to OUT/relDest, making its folder. */
export function copyInto(out, src, relDest) {
  const dest = join(out, relDest);
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(src, dest);
}
