/** Headless Debian chromium for report checks and screenshots (flags from the CI setup). */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';

function chromiumPath(): string | null {
  return (
    ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => existsSync(p)) ?? null
  );
}

function flags(): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
    '--disable-sync',
    `--user-data-dir=${mkdtempSync(join(tmpdir(), 'sdd-chromium-'))}`,
    '--virtual-time-budget=15000',
  ];
}

function need(): string {
  const c = chromiumPath();
  if (!c) throw new UserError('chromium is not installed (apt-get install chromium)');
  return c;
}

/** The DOM after the page's scripts ran (in a window `width` px wide: layout checks at that viewport). */
export function dumpDom(url: string, width?: number): string {
  const size = width ? [`--window-size=${width},1200`] : [];
  return execFileSync(need(), [...flags(), ...size, '--dump-dom', url], {
    encoding: 'utf-8',
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: 60_000,
  });
}

export function screenshot(url: string, out: string, width = 1100, height = 1600): void {
  execFileSync(
    need(),
    [...flags(), `--window-size=${width},${height}`, '--hide-scrollbars', `--screenshot=${out}`, url],
    { stdio: 'ignore', timeout: 60_000 },
  );
}
