/** Where report pages go, and the browser bundles they load (offline, no CDN). */
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join, resolve } from 'node:path';
import { PROJECT_ROOT } from '../util/env.js';

const require = createRequire(import.meta.url);

/** Copies the browser bundles next to the pages. */
export function copyVendor(out: string): void {
  const dir = join(out, 'vendor');
  mkdirSync(dir, { recursive: true });
  const files: Array<[string, string]> = [
    ['vega', 'build/vega.min.js'],
    ['vega-lite', 'build/vega-lite.min.js'],
    ['vega-embed', 'build/vega-embed.min.js'],
  ];
  for (const [pkg, rel] of files) {
    const root = join(require.resolve(pkg).split(`node_modules/${pkg}/`)[0], 'node_modules', pkg);
    copyFileSync(join(root, rel), join(dir, basename(rel)));
  }
}

/** The report folder: --out, else $SDD_REPORTS, else <project>/reports. */
export function reportOut(out?: string): string {
  return resolve(out ?? process.env.SDD_REPORTS ?? join(PROJECT_ROOT, 'reports'));
}
