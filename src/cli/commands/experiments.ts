/** sdd run / plan / validate / schema. */
import type { CommandModule } from 'yargs';
import { UserError } from '../../errors.js';
import { availableParallelism } from 'node:os';
import { backendChoice, backendFromEnv, GPU_DEFAULT_JOBS, likelyGpu, type BackendChoice } from '../../backend/index.js';
import type { PlannedRun } from '../../experiments/expand.js';
import { planAll } from '../../experiments/plan.js';
import { experimentJsonSchema } from '../../experiments/schema.js';
import { RunStore } from '../../runs/store.js';
import { executeRuns, describeRun, type RunOutcome } from '../../exec/executor.js';
import { modelsChanged } from '../../exec/stale.js';
import { createProgress, formatDuration } from '../../exec/progress.js';
import { fmtNumber, table } from '../table.js';
import { outputFolder, storeFolder } from '../paths.js';

interface PlanArgs {
  files: string[];
  set?: string[];
  profile?: string;
  store?: string;
  backend?: string;
}

// Lives with the experiments (the report pages plan too, and reports sit below the CLI).
export { planAll };

const planOptions = {
  set: { type: 'string', array: true, describe: 'override a key: a.b.c=value (repeatable)' },
  profile: { type: 'string', describe: 'apply a named profile from the file (e.g. quick)' },
} as const;

/**
 * Runs at a time. On a GPU backend each run is its own process sharing the device (the pool and
 * data parallelism are for CPU backends); on CPU backends auto means one per core.
 */
function jobsOf(v: string | undefined, backend: BackendChoice): number {
  const gpu = likelyGpu(backend);
  if (v === undefined) return gpu ? GPU_DEFAULT_JOBS : 1;
  if (v === 'auto') return gpu ? GPU_DEFAULT_JOBS : availableParallelism();
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`--jobs: expected a positive integer or auto, got ${v}`);
  return n;
}

/** Only an explicit flag overrides the experiment file's own `backend:`. */
function backendArg(v: string | undefined): BackendChoice | undefined {
  return v === undefined ? undefined : backendChoice(v);
}

export function runCommand(setCode: (c: number) => void): CommandModule<object, PlanArgs & { jobs?: string; 'dry-run': boolean; report: boolean; out?: string }> {
  return {
    command: 'run <files..>',
    describe: 'run every run of the experiment files (finished runs are skipped)',
    builder: (y) =>
      y
        .positional('files', { type: 'string', array: true, demandOption: true })
        .options(planOptions)
        .option('jobs', { alias: 'j', type: 'string', describe: `runs at a time: N, or auto = one per core on CPU backends; on a GPU backend auto and the default are ${GPU_DEFAULT_JOBS} processes sharing the device (default on CPU: 1)` })
        .option('dry-run', { type: 'boolean', default: false, describe: 'print the plan, run nothing' })
        .option('report', { type: 'boolean', default: process.env.SDD_REPORT !== '0', describe: 'write the report pages afterwards (sdd report; $SDD_REPORT=0 turns the default off)' })
        .option('out', { type: 'string', describe: 'report folder (default: $SDD_REPORTS or ./reports)' }) as never,
    handler: async (a) => {
      const backend = backendArg(a.backend);
      const jobs = jobsOf(a.jobs, backend ?? backendFromEnv());
      if (a.out !== undefined) outputFolder('--out', a.out);
      const runs = planAll(a.files, { sets: a.set, profile: a.profile });
      const store = new RunStore(storeFolder(a.store, false));
      if (a['dry-run']) {
        process.stdout.write(planTable(runs, store));
        return;
      }
      const code = await execute(runs, store, jobs, backend);
      setCode(code);
      if (a.report) {
        // Imported here: the report renderer takes seconds to load, which no other path needs.
        const { buildReport, reportOut } = await import('../../reports/build.js');
        const { pages } = await buildReport(a.files, { sets: a.set, profile: a.profile }, store, reportOut(a.out));
        for (const p of pages) process.stderr.write(`report: ${p.path}\n`);
      }
    },
  };
}

async function execute(runs: PlannedRun[], store: RunStore, jobs: number, backend?: BackendChoice): Promise<number> {
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
  const pending = runs.filter((r) => !store.isFinished(r.id)).length;
  const stale = runs.filter((r) => modelsChanged(store, r).length > 0).length;
  progress.log(`${runs.length} runs planned, ${runs.length - pending - stale} already finished${stale ? `, ${stale} to redo (model weights changed since they ran)` : ''}, store ${store.root}`);
  const t0 = Date.now();
  let outcomes: RunOutcome[];
  try {
    outcomes = await executeRuns(runs, { store, jobs, backend, signal: abort.signal, progress });
  } finally {
    progress.stop();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  process.stdout.write('\n' + summaryTable(outcomes, store));
  const failed = outcomes.filter((o) => o.outcome === 'failed').length;
  const stopped = outcomes.filter((o) => o.outcome === 'interrupted').length;
  process.stdout.write(
    `${outcomes.length - failed - stopped} ok, ${failed} failed, ${stopped} interrupted in ${formatDuration((Date.now() - t0) / 1000)}\n`,
  );
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

function summaryTable(outcomes: RunOutcome[], store: RunStore): string {
  const rows = outcomes.map((o) => [
    o.run.id,
    describeRun(o.run).slice(o.run.id.length + 1),
    o.outcome,
    o.seconds ? formatDuration(o.seconds) : '',
    o.outcome === 'failed' ? (o.message ?? '').slice(0, 80) : firstMetrics(store, o.run.id),
  ]);
  return table(['id', 'run', 'status', 'time', 'result'], rows);
}

/** finished | pending | stale (finished with model weights that have changed since: run redoes it). */
function runState(store: RunStore, r: PlannedRun): string {
  if (!store.isFinished(r.id)) return 'pending';
  const changed = modelsChanged(store, r);
  return changed.length ? `stale (${changed.join(', ')})` : 'finished';
}

function planTable(runs: PlannedRun[], store: RunStore): string {
  const rows = runs.map((r) => [r.id, runState(store, r), describeRun(r).slice(r.id.length + 1)]);
  return table(['id', 'status', 'run'], rows) + `${runs.length} runs\n`;
}

export function planCommand(_setCode: (c: number) => void): CommandModule<object, PlanArgs & { json: boolean }> {
  return {
    command: 'plan <files..>',
    describe: 'print the expanded runs with their ids, running nothing',
    builder: (y) =>
      y
        .positional('files', { type: 'string', array: true, demandOption: true })
        .options(planOptions)
        .option('json', { type: 'boolean', default: false }) as never,
    handler: (a) => {
      const runs = planAll(a.files, { sets: a.set, profile: a.profile });
      const store = new RunStore(storeFolder(a.store, false));
      if (a.json) {
        const out = runs.map((r) => ({ id: r.id, finished: store.isFinished(r.id), models_changed: modelsChanged(store, r), backend: r.backend, config: r.config }));
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
      } else process.stdout.write(planTable(runs, store));
    },
  };
}

export function validateCommand(_setCode: (c: number) => void): CommandModule<object, PlanArgs> {
  return {
    command: 'validate <files..>',
    describe: 'check experiment files (syntax, keys, types, includes) without running anything',
    builder: (y) => y.positional('files', { type: 'string', array: true, demandOption: true }).options(planOptions) as never,
    handler: (a) => {
      for (const f of a.files) {
        const runs = planAll([f], { sets: a.set, profile: a.profile });
        process.stdout.write(`${f}: ok (${runs.length} run${runs.length === 1 ? '' : 's'})\n`);
      }
    },
  };
}

export function schemaCommand(_setCode: (c: number) => void): CommandModule {
  return {
    command: 'schema',
    describe: 'print the experiment file JSON Schema (for editor completion)',
    handler: () => {
      process.stdout.write(JSON.stringify(experimentJsonSchema(), null, 2) + '\n');
    },
  };
}
