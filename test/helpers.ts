/** Shared test helpers: run the real CLI in a child process, make temp dirs and experiment files. */
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa, type Options } from 'execa';
import { PROJECT_ROOT } from '../src/util/env.js';

export const BIN = join(PROJECT_ROOT, 'bin', 'sdd.mjs');

export function tmp(prefix = 'sdd-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeFiles(root: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, name)), { recursive: true });
    writeFileSync(join(root, name), text);
  }
}

export interface CliResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved, for assertion messages. */
  all: string;
}

/** Runs the real `sdd` CLI in a child process; never throws on a non-zero exit. */
export async function sdd(args: string[], opts: Options = {}): Promise<CliResult> {
  // Runs in tests skip the report pages unless a test asks (they have their own tests). Every CLI
  // a test starts runs with synchronous tensor reads forbidden, as on a GPU backend (sync_guard.ts).
  const r = await execa(process.execPath, [BIN, ...args], {
    ...opts,
    env: { SDD_REPORT: '0', SDD_FORBID_SYNC_READS: '1', ...opts.env },
    reject: false,
    all: true,
  });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr), all: String(r.all) };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * Starts webgpu for a test file: null when it started, else why not (no adapter), for `skip`.
 * The Dawn object a failed probe made is released, so it does not keep the process alive.
 */
export async function webgpuSkipReason(): Promise<string | null> {
  const { BackendChoiceError, initBackend } = await import('../src/backend/index.js');
  const { releaseGpu } = await import('../src/backend/webgpu.js');
  try {
    await initBackend('webgpu');
    return null;
  } catch (e) {
    if (!(e instanceof BackendChoiceError)) throw e;
    releaseGpu(undefined);
    return `no WebGPU adapter: ${e.message}`;
  }
}
