/** `sdd run`'s execution: the executor driven under Ctrl-C handling, then the results table and exit code. */
import { join } from 'node:path';
import type { BackendChoice } from '../backend/index.js';
import type { PlannedRun } from '../experiments/expand.js';
import type { RunStore } from '../runs/store.js';
import { describeRun, type RunOutcome } from '../exec/executors.js';
import { getExecutor } from '../exec/index.js';
import { modelsChanged } from '../exec/stale.js';
import { createProgress, formatDuration } from '../util/progress.js';
import { readJson } from '../util/atomic.js';
import { fmtNumber, table } from './table.js';
import { withRunCount } from './run_progress.js';

export interface ExecuteArgs {
  executor: string;
  jobs: number;
  backend?: BackendChoice;
  /** The executor's own settings from its flags (executor_options.ts). */
  settings: Record<string, unknown>;
  detach: boolean;
  files: string[];
}

export async function execute(runs: PlannedRun[], store: RunStore, o: ExecuteArgs): Promise<number> {
  const abort = new AbortController();
  const toRun = runs.filter((r) => !store.isFinished(r.id) || modelsChanged(store, r).length > 0).length;
  const progress = withRunCount(createProgress(), toRun);
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      progress.log('interrupt: stopping runs (they stay resumable); press Ctrl-C again to force');
      abort.abort();
    } else process.exit(130);
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  progress.log(plannedLine(runs, store));
  const t0 = Date.now();
  let outcomes: RunOutcome[];
  try {
    const { jobs, backend, settings, detach } = o;
    const signal = abort.signal;
    const opts = { store, jobs, backend, settings, detach, signal, progress };
    outcomes = await getExecutor(o.executor).execute(runs, opts);
  } finally {
    progress.stop();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  recordOrigins(outcomes, store);
  process.stdout.write('\n' + summaryTable(outcomes, store) + failureReasons(outcomes));
  return closingLine(outcomes, o.files, (Date.now() - t0) / 1000, store);
}

/**
 * Each run this command executed or submitted records how it was planned (profile, --set) for
 * `sdd ls`/`show`; after the executor, since a stale run's folder is moved aside and made anew.
 */
function recordOrigins(outcomes: RunOutcome[], store: RunStore): void {
  for (const o of outcomes) {
    const ranHere = !['skipped', 'finished-elsewhere'].includes(o.outcome);
    if (o.run.origin && ranHere) store.recordOrigin(o.run.id, o.run.origin);
  }
}

function plannedLine(runs: PlannedRun[], store: RunStore): string {
  const pending = runs.filter((r) => !store.isFinished(r.id)).length;
  const stale = runs.filter((r) => modelsChanged(store, r).length > 0).length;
  const redo = stale ? `, ${stale} to redo (model weights changed since they ran)` : '';
  return `${runs.length} runs planned, ${runs.length - pending - stale} already finished${redo}, store ${store.root}`;
}

/** A run that failed on bad input (a UserError in the run: a broken checkpoint file, say). */
function badInput(store: RunStore, o: RunOutcome): boolean {
  return readJson<{ bad_input?: boolean }>(join(store.dir(o.run.id), 'error.json'))?.bad_input === true;
}

/**
 * Prints the closing count and returns the exit code: 130 interrupted; 2 when every failed run
 * failed on bad input (the README's code for it: nothing ran, and the input needs fixing); 1 when
 * a run failed otherwise; 0.
 */
function closingLine(outcomes: RunOutcome[], files: string[], seconds: number, store: RunStore): number {
  const failed = outcomes.filter((o) => o.outcome === 'failed').length;
  const stopped = outcomes.filter((o) => o.outcome === 'interrupted').length;
  const submitted = outcomes.filter((o) => o.outcome === 'submitted').length;
  if (submitted) {
    const rest = outcomes.length - submitted;
    const status = `\`sdd status ${files.join(' ')}\``;
    process.stdout.write(`${submitted} submitted, ${rest} already finished; ${status} shows where they stand\n`);
    return 0;
  }
  const ok = outcomes.length - failed - stopped;
  process.stdout.write(`${ok} ok, ${failed} failed, ${stopped} interrupted in ${formatDuration(seconds)}\n`);
  if (stopped) return 130;
  const failures = outcomes.filter((o) => o.outcome === 'failed');
  if (failures.length === 0) return 0;
  return failures.every((o) => badInput(store, o)) ? 2 : 1;
}

function firstMetrics(store: RunStore, id: string): string {
  try {
    const r = store.summary(id).result as { metrics?: Record<string, unknown> } | null;
    return Object.entries(r?.metrics ?? {})
      .filter(([, v]) => typeof v === 'number')
      .slice(0, 3)
      .map(([k, v]) => `${k}=${fmtNumber(v)}`)
      .join(' ');
  } catch {
    return '';
  }
}

/** Each failure's whole reason below the table (a cell would cut it: a long path hides the tensor name). */
function failureReasons(outcomes: RunOutcome[]): string {
  const failed = outcomes.filter((o) => o.outcome === 'failed');
  if (failed.length === 0) return '';
  const lines = failed.map((o) => `  ${o.run.id}: ${o.message ?? '(no reason recorded)'}`);
  return ['', 'why they failed:', ...lines, ''].join('\n');
}

function resultCell(o: RunOutcome, store: RunStore): string {
  if (o.outcome === 'failed') return 'see below';
  if (o.outcome === 'submitted') return `Slurm task ${o.message}`;
  return firstMetrics(store, o.run.id);
}

function summaryTable(outcomes: RunOutcome[], store: RunStore): string {
  const rows = outcomes.map((o) => [
    o.run.id,
    describeRun(o.run).slice(o.run.id.length + 1),
    o.outcome,
    o.seconds ? formatDuration(o.seconds) : '',
    resultCell(o, store),
  ]);
  return table(['id', 'run', 'status', 'time', 'result'], rows);
}
