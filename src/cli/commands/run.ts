/** sdd run: every run of the experiment files that is not finished yet, then the report pages. */
import type { CommandModule } from 'yargs';
import { availableParallelism } from 'node:os';
import { UserError } from '../../errors.js';
import { backendChoice, backendFromEnv, GPU_DEFAULT_JOBS, likelyGpu, type BackendChoice } from '../../backend/index.js';
import type { PlannedRun } from '../../experiments/expand.js';
import { planAll } from '../../experiments/plan.js';
import { RunStore } from '../../runs/store.js';
import { allExecutors } from '../../exec/index.js';
import { requireWorldFiles } from '../../world/files.js';
import { outputFolder, storeFolder } from '../paths.js';
import { executorFlags, executorOf, executorOptions, type ExecutorArgs } from '../executor_options.js';
import { withPlanOptions, type PlanArgs } from '../plan_options.js';
import { execute } from '../run_execute.js';
import { planTable } from './plan.js';
import { probeTorch } from '../../methods/engines/torch_probe.js';

type RunArgs = PlanArgs & ExecutorArgs & { jobs?: string; 'dry-run': boolean; report: boolean; out?: string };

/**
 * Runs at a time. On a GPU backend each run is its own process sharing the device (the pool and
 * data parallelism are for CPU backends); on CPU backends auto means one per core.
 */
function jobsOf(v: string | undefined, backend: BackendChoice, runs: PlannedRun[]): number {
  const torchGpus = torchOnGpu(runs);
  if ((v === undefined || v === 'auto') && torchGpus > 0) return TORCH_JOBS_PER_GPU * torchGpus;
  const gpu = likelyGpu(backend);
  if (v === undefined) return gpu ? GPU_DEFAULT_JOBS : 1;
  if (v === 'auto') return gpu ? GPU_DEFAULT_JOBS : availableParallelism();
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`--jobs: expected a positive integer or auto, got ${v}`);
  return n;
}

/**
 * Torch-engine runs on a host where torch sees CUDA: processes per GPU for auto and the default
 * (each a worker of its own on one GPU: src/exec/engine_workers.ts). Not yet measured on a GPU:
 * dist/gpu-check.sh's torch-quick step times --jobs auto against 2 and 8 per GPU.
 */
const TORCH_JOBS_PER_GPU = 4;

/** The GPUs torch-engine runs would spread over (0: no torch run planned, or torch sees no CUDA device). */
function torchOnGpu(runs: PlannedRun[]): number {
  if (!runs.some((r) => r.config.engine?.name === 'torch')) return 0;
  const probe = probeTorch();
  const devices = (probe.detail as { devices?: unknown[] }).devices?.length ?? 0;
  return probe.gpu ? Math.max(1, devices) : 0;
}

/** Only an explicit flag overrides the experiment file's own `backend:`. */
function backendArg(v: string | undefined): BackendChoice | undefined {
  return v === undefined ? undefined : backendChoice(v);
}

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

const JOBS_HELP =
  'runs at a time: N, or auto = one per core on CPU backends; on a GPU backend auto and the default are ' +
  `${GPU_DEFAULT_JOBS} processes sharing the device; torch-engine runs where torch sees CUDA: ${TORCH_JOBS_PER_GPU} per GPU (default on CPU: 1)`;

export function runCommand(setCode: (c: number) => void): CommandModule<object, RunArgs> {
  return {
    command: 'run <files..>',
    describe: 'run every run of the experiment files (finished runs are skipped)',
    builder: (y) =>
      withPlanOptions(y)
        .option('jobs', { alias: 'j', type: 'string', describe: JOBS_HELP })
        .option('dry-run', { type: 'boolean', default: false, describe: 'print the plan, run nothing' })
        .option('report', {
          type: 'boolean',
          default: process.env.SDD_REPORT !== '0',
          describe: 'write the report pages afterwards (sdd report; $SDD_REPORT=0 turns the default off)',
        })
        .option('out', { type: 'string', describe: 'report folder (default: $SDD_REPORTS or ./reports)' })
        .options(executorOptions()) as never,
    handler: async (a) => {
      const backend = backendArg(a.backend);
      if (a.out !== undefined) outputFolder('--out', a.out);
      const runs = planAll(a.files, { sets: a.set, profile: a.profile });
      const jobs = jobsOf(a.jobs, backend ?? backendFromEnv(), runs);
      const executor = executorOf(a.executor, runs);
      const settings = executorFlags(executor, a);
      requireFilesOf(runs);
      if (a.detach && !executor.detachable) {
        const queued = allExecutors()
          .filter((e) => e.detachable)
          .map((e) => e.name)
          .join(', ');
        const why = `${executor.name} runs are child processes of this command`;
        throw new UserError(`--detach: only with --executor ${queued} (${why})`);
      }
      const store = new RunStore(storeFolder(a.store, false));
      if (a['dry-run']) {
        process.stdout.write(planTable(runs, store));
        return;
      }
      await executor.preflight?.();
      const how = { executor: executor.name, jobs, backend, settings, detach: a.detach, files: a.files };
      setCode(await execute(runs, store, how));
      // Detached runs have not finished yet: `sdd report` builds the pages once they have.
      if (a.report && !a.detach) await writeReport(a, store);
    },
  };
}

async function writeReport(a: RunArgs, store: RunStore): Promise<void> {
  // Imported here: the report renderer takes seconds to load, which no other path needs.
  const { buildReport, reportOut } = await import('../../reports/build.js');
  const opts = { sets: a.set, profile: a.profile };
  const { pages } = await buildReport(a.files, opts, store, reportOut(a.out));
  for (const p of pages) process.stderr.write(`report: ${p.path}\n`);
}
