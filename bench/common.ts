/** Shared by the benchmarks: timing with medians, and result files that name machine and backend. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { median } from 'simple-statistics';
import { activeBackend } from '../src/backend/index.js';
import { gitInfo, machineInfo, PROJECT_ROOT } from '../src/runs/env.js';

export const RESULTS_DIR = join(PROJECT_ROOT, 'bench', 'results');

/** Runs `fn` warmup + n times; returns per-run milliseconds (warm-up excluded). */
export async function timeIt(fn: () => unknown | Promise<unknown>, n: number, warmup = 2): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

export function med(xs: number[]): number {
  return median(xs);
}

export function writeResult(name: string, data: Record<string, unknown>): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}.json`);
  const record = { bench: name, at: new Date().toISOString(), machine: machineInfo(), backend: activeBackend(), git: gitInfo(), ...data };
  writeFileSync(path, JSON.stringify(record, null, 2) + '\n');
  return path;
}

export function argValue(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
