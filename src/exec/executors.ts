/**
 * Executors by name (`--executor`, `executor:` in an experiment file). Planning (experiments/) and
 * executing stay separate: an executor takes planned runs and a run store and brings each run to
 * an outcome, using the one single-run entry point (`sdd __run-one DIR`, exec/child.ts) wherever
 * the run happens. A new executor is one file that calls registerExecutor, plus its import line in
 * exec/index.ts.
 */
import type { BackendChoice } from '../backend/index.js';
import type { PlannedRun } from '../experiments/expand.js';
import type { z } from 'zod';
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
  /**
   * This executor's settings given on the command line (its `flags`, checked by its schema): they
   * override the experiment files' block under `settings.key`.
   */
  settings?: Record<string, unknown>;
  /** Submit and return without waiting (executors that queue). */
  detach?: boolean;
}

/** One `sdd run` flag of an executor, and the settings key it sets. */
export interface ExecutorFlag {
  setting: string;
  type: 'string' | 'number' | 'boolean';
  array?: boolean;
  describe: string;
}

/**
 * An executor's own settings: a block of the experiment file (`key:`, e.g. `slurm:`), checked by
 * its schema, and the `sdd run` flags that override it. Not part of run ids: where a run executes
 * does not change it.
 */
export interface ExecutorSettings {
  key: string;
  describe: string;
  schema(): z.ZodType<Record<string, unknown>>;
  flags: Record<string, ExecutorFlag>;
}

/** Where a run handed to an executor's queue stands, for `sdd status` (the store tells the rest). */
export interface QueueState {
  /** The executor's id for it ("123_4"), shown beside the run. */
  task: string;
  /** Still in the queue: waiting (queued) or running; or gone from it (ended). */
  phase: 'queued' | 'running' | 'ended';
  /** One line: the queue's own words ("Slurm task 123_4 pending (Priority)"). */
  detail: string;
}

export interface Executor {
  readonly name: string;
  /** One line for --help and the schema. */
  readonly describe: string;
  /** Checks, before anything is planned or written, that the executor can work here (UserError if not). */
  preflight?(): Promise<void>;
  execute(runs: PlannedRun[], opts: ExecuteOptions): Promise<RunOutcome[]>;
  readonly settings?: ExecutorSettings;
  /** Whether its settings block asks for GPUs (engine: auto then plans torch runs). */
  asksGpus?(block: Record<string, unknown>): boolean;
  /** Whether --detach means something to it (it queues runs elsewhere). */
  readonly detachable?: boolean;
  /** The status hook: for each run folder, what its queue says, or null where it knows nothing. */
  queueStates?(dirs: string[]): Promise<Array<QueueState | null>>;
}

const registry = new Map<string, Executor>();

/** Adds an executor (its module calls this; exec/index.ts imports each module). A duplicate name is a bug. */
export function registerExecutor(e: Executor): void {
  if (registry.has(e.name)) throw new Error(`executor '${e.name}' is already registered`);
  registry.set(e.name, e);
}

export function getExecutor(name: string): Executor {
  const e = registry.get(name);
  if (!e) throw new Error(`executor '${name}' is not registered`);
  return e;
}

/** Every registered executor, by name ('local' first: the default). */
export function allExecutors(): Executor[] {
  return [...registry.values()].sort((a, b) =>
    a.name === 'local' ? -1 : b.name === 'local' ? 1 : a.name.localeCompare(b.name),
  );
}

/** The registered executors' names, 'local' first (sdd run's --executor choices). */
export function executorNames(): string[] {
  return allExecutors().map((e) => e.name);
}

export function describeRun(r: PlannedRun): string {
  const point = Object.entries(r.config.point).map(([k, v]) => `${k.split('.').pop()}=${JSON.stringify(v)}`);
  return [r.id, r.config.method.name, ...point, `seed=${r.config.seed}`].join(' ');
}
