// The checks at the end of `make bundle`: nothing in OUT points back into this checkout, and OUT
// stays within its size budget (reported by kind of file).
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { die, rel, ROOT, walk } from './common.mjs';

export const LIMIT_MB = 40;

/** Nothing may point back into this checkout: the bundle must work after being copied elsewhere. */
export function checkNoLeaks(out) {
  const leaks = [];
  for (const f of walk(out, true)) {
    if (!/\.(mjs|js|json)$/.test(f)) continue;
    const text = readFileSync(f, 'utf-8');
    if (text.includes(ROOT)) leaks.push(rel(f, out));
    if (/\.m?js$/.test(f) && /\bimport\.meta\.(dirname|filename)\b/.test(text))
      leaks.push(`${rel(f, out)} (import.meta.dirname/filename)`);
  }
  if (leaks.length) die(`absolute paths of ${ROOT} in: ${leaks.join(', ')}`);
}

// Sizes in MB (10⁶ bytes), the unit of the budget; du's count (whole blocks) is the one checked.
export const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;
const GROUPS = [
  ['code (sdd.mjs, lib/, workers)', (f) => /\.(mjs|js)$/.test(f) && !f.startsWith('node_modules/webgpu/')],
  ['webgpu addon (dawn.node)', (f) => f.startsWith('node_modules/webgpu/')],
  ['tfjs wasm binaries', (f) => f.endsWith('.wasm')],
  ['toyfaces zoo', (f) => f.startsWith('datasets/toyfaces/zoo/')],
  ['experiments', (f) => f.startsWith('experiments/')],
  ['torch engine (python/)', (f) => f.startsWith('python/')],
  ['other (package.json, locales)', () => true],
];

/** Prints OUT's size by group; returns its bytes, files and du's count (null without du). */
export function measureSizes(out) {
  const sums = GROUPS.map(() => 0);
  let totalBytes = 0;
  const all = walk(out, true);
  for (const f of all) {
    const size = statSync(f).size;
    totalBytes += size;
    sums[GROUPS.findIndex(([, match]) => match(rel(f, out)))] += size;
  }
  GROUPS.forEach(([label], i) => process.stdout.write(`  ${label.padEnd(32)} ${mb(sums[i]).padStart(9)}\n`));
  let du = null;
  try {
    du = Number(execFileSync('du', ['-sk', out]).toString().split(/\s/)[0]) * 1024;
  } catch {
    /* no du: the byte count stands */
  }
  return { totalBytes, files: all.length, du };
}
