/** `sdd run`'s execution: the executor driven under Ctrl-C handling, then the results table and exit code. */
import type { BackendChoice } from '../backend/index.js';
import type { PlannedRun } from '../experiments/expand.js';
import type { ExecutorName, SlurmSettings } from '../experiments/schema.js';
import type { RunStore } from '../runs/store.js';
import { describeRun, type RunOutcome } from '../exec/executors.js';
import { getExecutor } from '../exec/index.js';
import { modelsChanged } from '../exec/stale.js';
import { createProgress, formatDuration } from '../util/progress.js';
import { fmtNumber, table } from './table.js';

export interface ExecuteArgs {
  executor: ExecutorName;
  jobs: number;
  backend?: BackendChoice;
  slurm: SlurmSettings;
  detach: boolean;
  files: string[];
}

export async function execute(runs: PlannedRun[], store: RunStore, o: ExecuteArgs): Promise<number> {
  const abort = new AbortController();
  const progress = createProgress();
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
    const { jobs, backend, slurm, detach } = o;
    const signal = abort.signal;
    outcomes = await getExecutor(o.executor).execute(runs, { store, jobs, backend, slurm, detach, signal, progress });
  } finally {
    progress.stop();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  process.stdout.write('\n' + summaryTable(outcomes, store));
  return closingLine(outcomes, o.files, (Date.now() - t0) / 1000);
}

function plannedLine(runs: PlannedRun[], store: RunStore): string {
  const pending = runs.filter((r) => !store.isFinished(r.id)).length;
  const stale = runs.filter((r) => modelsChanged(store, r).length > 0).length;
  const redo = stale ? `, ${stale} to redo (model weights changed since they ran)` : '';
  return `${runs.length} runs planned, ${runs.length - pending - stale} already finished${redo}, store ${store.root}`;
}

/** Prints the closing count and returns the exit code. */
function closingLine(outcomes: RunOutcome[], files: string[], seconds: number): number {
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
  return stopped ? 130 : failed ? 1 : 0;
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

function resultCell(o: RunOutcome, store: RunStore): string {
  if (o.outcome === 'failed') return (o.message ?? '').slice(0, 160);
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
