/**
 * Executors by name (`--executor`, `executor:` in an experiment file). Planning (experiments/) and
 * executing stay separate: an executor takes planned runs and a run store and brings each run to
 * an outcome, using the one single-run entry point (`sdd __run-one DIR`, exec/child.ts) wherever
 * the run happens. A new executor is one file that calls registerExecutor, plus its import line in
 * exec/index.ts.
 */
import type { BackendChoice } from '../backend/index.js';
import type { PlannedRun } from '../experiments/expand.js';
import type { ExecutorName, SlurmSettings } from '../experiments/schema.js';
import type { RunStore } from '../runs/store.js';
import type { ProgressReporter } from '../util/progress.js';

export type Outcome = 'finished' | 'skipped' | 'finished-elsewhere' | 'failed' | 'interrupted' | 'submitted';

export interface RunOutcome {
  run: PlannedRun;
  outcome: Outcome;
  seconds: number;
  message?: string;
}

export interface ExecuteOptions {
  store: RunStore;
  /** Runs at a time (local executor). */
  jobs: number;
  backend?: BackendChoice;
  signal: AbortSignal;
  progress: ProgressReporter;
  /** Cluster resources given on the command line: they override the experiment file's `slurm:`. */
  slurm?: SlurmSettings;
  /** Submit and return without waiting (cluster executors). */
  detach?: boolean;
}

export interface Executor {
  readonly name: ExecutorName;
  /** Checks, before anything is planned or written, that the executor can work here (UserError if not). */
  preflight?(): Promise<void>;
  execute(runs: PlannedRun[], opts: ExecuteOptions): Promise<RunOutcome[]>;
}

const registry = new Map<string, Executor>();

export function registerExecutor(e: Executor): void {
  registry.set(e.name, e);
}

export function getExecutor(name: ExecutorName): Executor {
  const e = registry.get(name);
  if (!e) throw new Error(`executor '${name}' is not registered`);
  return e;
}

export function describeRun(r: PlannedRun): string {
  const point = Object.entries(r.config.point).map(([k, v]) => `${k.split('.').pop()}=${JSON.stringify(v)}`);
  return [r.id, r.config.method.name, ...point, `seed=${r.config.seed}`].join(' ');
}
