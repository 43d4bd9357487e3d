/**
 * The local executor's execution (its entry is local.ts): skips finished runs, runs the rest each
 * in a child process with at most `jobs` at a time, waits out runs locked by another live
 * `sdd run`, and records failures without stopping the sweep. Planning (experiments/expand) and
 * executing stay separate, so a cluster executor (slurm.ts) replaces this one without touching
 * experiments or methods.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { PlannedRun } from '../experiments/expand.js';
import { readLock } from '../runs/lock.js';
import { RunStore } from '../runs/store.js';
import { readJson, writeJsonAtomic } from '../util/atomic.js';
import { EXIT_BUSY, EXIT_INTERRUPTED, type ChildMessage } from './child.js';
import { EngineWorkers } from './engine_workers.js';
import { WORKERS_ENV, type EngineRequest } from '../methods/engine_ipc.js';
import { PROJECT_ROOT } from '../util/env.js';
import { modelsChanged } from './stale.js';
import { formatDuration, type ProgressReporter } from '../util/progress.js';
import { describeRun, type ExecuteOptions, type RunOutcome } from './executors.js';

/** The single-run entry point every executor starts (`sdd __run-one DIR`). */
export const BIN = join(PROJECT_ROOT, 'bin', 'sdd.mjs');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A finished run is skipped, unless the world's weights changed since it ran: then the old run is
 * moved aside and this one runs again. True when the run is finished and stays so.
 */
export function finishedAndCurrent(run: PlannedRun, store: RunStore, progress: ProgressReporter): boolean {
  if (!store.isFinished(run.id)) return false;
  const label = describeRun(run);
  const changed = modelsChanged(store, run);
  if (changed.length === 0) {
    progress.log(`skip ${label} (finished)`);
    return true;
  }
  const aside = store.supersede(run.id, () => modelsChanged(store, run).length > 0);
  // Not moved: another process got there first; the run's own process skips or waits for it.
  if (aside)
    progress.log(
      `rerun ${label}: model weights changed since it ran (${changed.join(', ')}); the old run is kept in ${aside}`,
    );
  return false;
}

export async function executeRuns(runs: PlannedRun[], opts: ExecuteOptions): Promise<RunOutcome[]> {
  const outcomes: RunOutcome[] = new Array(runs.length);
  let next = 0;
  const workers = new EngineWorkers();
  const worker = async () => {
    while (next < runs.length && !opts.signal.aborted) {
      const i = next++;
      outcomes[i] = await executeOne(runs[i], opts, workers);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.jobs, runs.length)) }, worker));
  } finally {
    workers.close();
  }
  for (let i = 0; i < runs.length; i++) {
    outcomes[i] ??= { run: runs[i], outcome: 'interrupted', seconds: 0, message: 'not started' };
  }
  return outcomes;
}

async function executeOne(run: PlannedRun, opts: ExecuteOptions, workers: EngineWorkers): Promise<RunOutcome> {
  const { store, progress } = opts;
  const label = describeRun(run);
  if (finishedAndCurrent(run, store, progress)) return { run, outcome: 'skipped', seconds: 0 };
  const dir = store.prepare(run.id, run.config, run.files);
  const t0 = Date.now();
  for (;;) {
    if (opts.signal.aborted) return { run, outcome: 'interrupted', seconds: 0 };
    const code = await spawnChild(run, dir, opts, label, workers);
    const seconds = (Date.now() - t0) / 1000;
    if (code === EXIT_BUSY) {
      // Another live `sdd run` executes it: wait for its lock to go, then look at the outcome.
      progress.log(`wait ${label} (running in another process)`);
      while (!opts.signal.aborted) {
        const l = readLock(dir);
        if (!(l.held && l.alive)) break;
        await sleep(250);
      }
      if (store.isFinished(run.id)) {
        progress.log(`done ${label} (finished by another process)`);
        return { run, outcome: 'finished-elsewhere', seconds };
      }
      continue; // the other process died or failed: run it here
    }
    if (code === 0) return { run, outcome: 'finished', seconds };
    if (opts.signal.aborted || code === EXIT_INTERRUPTED) return { run, outcome: 'interrupted', seconds };
    return { run, outcome: 'failed', seconds, message: failureMessage(dir, code) };
  }
}

async function spawnChild(
  run: PlannedRun,
  dir: string,
  opts: ExecuteOptions,
  label: string,
  workers: EngineWorkers,
): Promise<number> {
  const backend = opts.backend ?? run.backend;
  const key = run.id;
  opts.progress.start(key, label);
  // 'auto' is left to the child, which then honours SDD_BACKEND (inherited) like every command.
  const child = execa(
    process.execPath,
    [BIN, '__run-one', dir, ...(backend === 'auto' ? [] : ['--backend', backend])],
    {
      ipc: true,
      serialization: 'json',
      reject: false,
      stdin: 'ignore',
      stdout: { file: join(dir, 'output.txt'), append: true },
      stderr: { file: join(dir, 'output.txt'), append: true },
      cancelSignal: opts.signal,
      forceKillAfterDelay: 10_000,
      env: { SDD_CHILD: '1', [WORKERS_ENV]: '1' },
    },
  );
  child.on('message', (m: unknown) => {
    const msg = m as ChildMessage | EngineRequest;
    if (msg.type === 'progress') opts.progress.update(key, msg.done, msg.total, msg.label);
    if (msg.type === 'engine-run' || msg.type === 'engine-cancel')
      workers.handle(key, msg, (r) => child.connected && child.send(r));
  });
  const res = await child;
  workers.ownerGone(key);
  let code = res.exitCode ?? (res.signal ? 128 + signalNumber(res.signal) : 1);
  if (code !== 0 && code !== EXIT_BUSY && existsSync(join(dir, 'result.json'))) {
    // result.json is written last: the run finished and the process died on its way out (Dawn's
    // threads can abort at process teardown). The result stands.
    opts.progress.log(`note ${label}: exited with code ${code} after finishing; its result is kept`);
    code = 0;
  }
  if (code !== EXIT_BUSY) {
    const secs = formatDuration((res.durationMs ?? 0) / 1000);
    const status =
      code === 0
        ? 'ok'
        : code === EXIT_INTERRUPTED || opts.signal.aborted
          ? 'interrupted'
          : `FAILED (exit ${code}${res.signal ? `, ${res.signal}` : ''})`;
    opts.progress.finish(key, `${status.padEnd(11)} ${label} ${secs}`);
    if (code !== 0 && !opts.signal.aborted && !existsSync(join(dir, 'error.json'))) {
      // Killed before it could say why (OOM killer, segfault): record what the parent saw.
      writeJsonAtomic(join(dir, 'error.json'), {
        kind: 'crash',
        message: `child exited with code ${res.exitCode ?? 'none'}${res.signal ? ` by ${res.signal}` : ''}`,
        output_tail: tail(join(dir, 'output.txt')),
        at: new Date().toISOString(),
      });
    }
  } else {
    opts.progress.finish(key, `busy        ${label}`);
  }
  return code;
}

function signalNumber(sig: string): number {
  return ({ SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGSEGV: 11, SIGABRT: 6 } as Record<string, number>)[sig] ?? 0;
}

export function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf-8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function failureMessage(dir: string, code: number): string {
  return readJson<{ message: string }>(join(dir, 'error.json'))?.message ?? `exit code ${code}`;
}
