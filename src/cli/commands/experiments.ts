/** sdd run / plan / validate / schema. */
import type { CommandModule } from 'yargs';
import { UserError } from '../../errors.js';
import { availableParallelism } from 'node:os';
import { backendChoice, backendFromEnv, GPU_DEFAULT_JOBS, likelyGpu, type BackendChoice } from '../../backend/index.js';
import type { PlannedRun } from '../../experiments/expand.js';
import { planAll } from '../../experiments/plan.js';
import { experimentJsonSchema } from '../../experiments/schema.js';
import { RunStore } from '../../runs/store.js';
import { describeRun, type RunOutcome } from '../../exec/executors.js';
import { getExecutor } from '../../exec/index.js';
import { runStatuses, type RunState } from '../../exec/status.js';
import { EXECUTORS, slurmSchema, type ExecutorName, type SlurmSettings } from '../../experiments/schema.js';
import { modelsChanged } from '../../exec/stale.js';
import { createProgress, formatDuration } from '../../util/progress.js';
import { fmtNumber, table } from '../table.js';
import { outputFolder, storeFolder } from '../paths.js';
import { requireWorldFiles } from '../../world/files.js';

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

interface ClusterArgs {
  executor?: string;
  detach: boolean;
  partition?: string;
  time?: string;
  cpus?: number;
  mem?: string;
  gpus?: number;
  account?: string;
  qos?: string;
  sbatch?: string[];
  'max-parallel'?: number;
  requeue?: boolean;
}

const clusterOptions = {
  executor: { type: 'string', choices: EXECUTORS as unknown as string[], describe: "where runs execute: local child processes, or Slurm array jobs (default: the files' executor:, else local)" },
  detach: { type: 'boolean', default: false, describe: 'slurm: submit and return; `sdd status FILES` shows where the runs stand' },
  partition: { type: 'string', describe: 'slurm: partition' },
  time: { type: 'string', describe: 'slurm: time limit per run (e.g. 2:00:00)' },
  cpus: { type: 'number', describe: 'slurm: CPUs per run' },
  mem: { type: 'string', describe: 'slurm: memory per run (e.g. 16G)' },
  gpus: { type: 'number', describe: 'slurm: GPUs per run (--gres=gpu:N)' },
  account: { type: 'string', describe: 'slurm: account' },
  qos: { type: 'string', describe: 'slurm: QoS' },
  sbatch: { type: 'string', array: true, describe: 'slurm: another #SBATCH option, e.g. --sbatch=--constraint=a100 (repeatable)' },
  'max-parallel': { type: 'number', describe: 'slurm: tasks of the array running at once (%K throttle)' },
  requeue: { type: 'boolean', describe: 'slurm: let Slurm requeue a task after a node failure or preemption (--no-requeue forbids it)' },
} as const;

/** The Slurm settings given as flags, checked like the experiment file's `slurm:` block. */
function slurmFlags(a: ClusterArgs): SlurmSettings {
  const raw = {
    partition: a.partition,
    time: a.time,
    cpus: a.cpus,
    mem: a.mem,
    gpus: a.gpus,
    account: a.account,
    qos: a.qos,
    extra: a.sbatch,
    max_parallel: a['max-parallel'],
    requeue: a.requeue,
  };
  const flag: Record<string, string> = { extra: 'sbatch', max_parallel: 'max-parallel' };
  const r = slurmSchema().safeParse(Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)));
  if (!r.success) {
    const issue = r.error.issues[0];
    const key = String(issue.path[0]);
    throw new UserError(`--${flag[key] ?? key}: ${issue.message} (got ${JSON.stringify(raw[key as keyof typeof raw])})`);
  }
  return r.data;
}

/** The flag wins; else the files' `executor:` (they must agree); else local. */
/** Every world's outside files present before anything runs: a missing role exits 2 with where to get it. */
function requireFilesOf(runs: PlannedRun[]): void {
  const seen = new Set<string>();
  for (const r of runs) {
    const key = `${r.config.world}\0${JSON.stringify(r.files)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    requireWorldFiles(r.config.world, r.files, `experiment ${r.config.experiment}`);
  }
}

function executorOf(flag: string | undefined, runs: PlannedRun[]): ExecutorName {
  if (flag !== undefined) return flag as ExecutorName;
  const named = [...new Set(runs.map((r) => r.executor).filter((e): e is ExecutorName => e !== undefined))];
  if (named.length > 1) throw new UserError(`the experiment files name different executors (${named.join(', ')}): choose one with --executor`);
  return named[0] ?? 'local';
}

export function runCommand(setCode: (c: number) => void): CommandModule<object, PlanArgs & ClusterArgs & { jobs?: string; 'dry-run': boolean; report: boolean; out?: string }> {
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
        .option('out', { type: 'string', describe: 'report folder (default: $SDD_REPORTS or ./reports)' })
        .options(clusterOptions) as never,
    handler: async (a) => {
      const backend = backendArg(a.backend);
      const jobs = jobsOf(a.jobs, backend ?? backendFromEnv());
      if (a.out !== undefined) outputFolder('--out', a.out);
      const slurm = slurmFlags(a);
      const runs = planAll(a.files, { sets: a.set, profile: a.profile });
      const executor = executorOf(a.executor, runs);
      requireFilesOf(runs);
      if (a.detach && executor === 'local') throw new UserError('--detach: only with --executor slurm (local runs are child processes of this command)');
      const store = new RunStore(storeFolder(a.store, false));
      if (a['dry-run']) {
        process.stdout.write(planTable(runs, store));
        return;
      }
      await getExecutor(executor).preflight?.();
      const code = await execute(runs, store, { executor, jobs, backend, slurm, detach: a.detach, files: a.files });
      setCode(code);
      // Detached runs have not finished yet: `sdd report` builds the pages once they have.
      if (a.report && !a.detach) {
        // Imported here: the report renderer takes seconds to load, which no other path needs.
        const { buildReport, reportOut } = await import('../../reports/build.js');
        const { pages } = await buildReport(a.files, { sets: a.set, profile: a.profile }, store, reportOut(a.out));
        for (const p of pages) process.stderr.write(`report: ${p.path}\n`);
      }
    },
  };
}

async function execute(
  runs: PlannedRun[],
  store: RunStore,
  o: { executor: ExecutorName; jobs: number; backend?: BackendChoice; slurm: SlurmSettings; detach: boolean; files: string[] },
): Promise<number> {
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
    outcomes = await getExecutor(o.executor).execute(runs, { store, jobs: o.jobs, backend: o.backend, slurm: o.slurm, detach: o.detach, signal: abort.signal, progress });
  } finally {
    progress.stop();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  process.stdout.write('\n' + summaryTable(outcomes, store));
  const failed = outcomes.filter((o) => o.outcome === 'failed').length;
  const stopped = outcomes.filter((o) => o.outcome === 'interrupted').length;
  const submitted = outcomes.filter((o) => o.outcome === 'submitted').length;
  if (submitted) {
    process.stdout.write(`${submitted} submitted, ${outcomes.length - submitted} already finished; \`sdd status ${o.files.join(' ')}\` shows where they stand\n`);
    return 0;
  }
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
    o.outcome === 'failed' ? (o.message ?? '').slice(0, 160) : o.outcome === 'submitted' ? `Slurm task ${o.message}` : firstMetrics(store, o.run.id),
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

export function statusCommand(setCode: (c: number) => void): CommandModule<object, PlanArgs & { json: boolean }> {
  return {
    command: 'status <files..>',
    describe: 'where every run of the experiment files stands: finished, running, queued (Slurm), failed (why), partial or not started',
    builder: (y) =>
      y
        .positional('files', { type: 'string', array: true, demandOption: true })
        .options(planOptions)
        .option('json', { type: 'boolean', default: false }) as never,
    handler: async (a) => {
      const runs = planAll(a.files, { sets: a.set, profile: a.profile });
      const store = new RunStore(storeFolder(a.store, false));
      const statuses = await runStatuses(runs, store);
      if (a.json) {
        process.stdout.write(JSON.stringify(statuses, null, 2) + '\n');
        return;
      }
      const rows = statuses.map((s, i) => [s.id, s.state, describeRun(runs[i]).slice(s.id.length + 1), s.detail.slice(0, 160)]);
      process.stdout.write(table(['id', 'state', 'run', 'detail'], rows));
      const order: RunState[] = ['finished', 'stale', 'running', 'queued', 'partial', 'failed', 'not started'];
      const counts = order.map((k) => [k, statuses.filter((s) => s.state === k).length] as const).filter(([, n]) => n > 0);
      process.stdout.write(`${runs.length} runs: ${counts.map(([k, n]) => `${n} ${k}`).join(', ')}\n`);
      // Scripts can wait on it: 0 once every run is finished.
      setCode(statuses.every((s) => s.state === 'finished') ? 0 : statuses.some((s) => s.state === 'failed') ? 1 : 3);
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
