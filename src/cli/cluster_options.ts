/**
 * The cluster flags of `sdd run` (--executor and the Slurm resources) and how they combine with
 * the experiment files' `executor:` / `slurm:`. Self-contained on purpose: it is to move into the
 * executor registry, where each executor owns its flags.
 */
import { UserError } from '../errors.js';
import type { PlannedRun } from '../experiments/expand.js';
import { EXECUTORS, slurmSchema, type ExecutorName, type SlurmSettings } from '../experiments/schema.js';

export interface ClusterArgs {
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

export const clusterOptions = {
  executor: {
    type: 'string',
    choices: EXECUTORS as unknown as string[],
    describe:
      "where runs execute: local child processes, or Slurm array jobs (default: the files' executor:, else local)",
  },
  detach: {
    type: 'boolean',
    default: false,
    describe: 'slurm: submit and return; `sdd status FILES` shows where the runs stand',
  },
  partition: { type: 'string', describe: 'slurm: partition' },
  time: { type: 'string', describe: 'slurm: time limit per run (e.g. 2:00:00)' },
  cpus: { type: 'number', describe: 'slurm: CPUs per run' },
  mem: { type: 'string', describe: 'slurm: memory per run (e.g. 16G)' },
  gpus: { type: 'number', describe: 'slurm: GPUs per run (--gres=gpu:N)' },
  account: { type: 'string', describe: 'slurm: account' },
  qos: { type: 'string', describe: 'slurm: QoS' },
  sbatch: {
    type: 'string',
    array: true,
    describe: 'slurm: another #SBATCH option, e.g. --sbatch=--constraint=a100 (repeatable)',
  },
  'max-parallel': { type: 'number', describe: 'slurm: tasks of the array running at once (%K throttle)' },
  requeue: {
    type: 'boolean',
    describe: 'slurm: let Slurm requeue a task after a node failure or preemption (--no-requeue forbids it)',
  },
} as const;

/** The Slurm settings given as flags, checked like the experiment file's `slurm:` block. */
export function slurmFlags(a: ClusterArgs): SlurmSettings {
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
  const given = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
  const r = slurmSchema().safeParse(given);
  if (!r.success) {
    const issue = r.error.issues[0];
    const key = String(issue.path[0]);
    const got = JSON.stringify(raw[key as keyof typeof raw]);
    throw new UserError(`--${flag[key] ?? key}: ${issue.message} (got ${got})`);
  }
  return r.data;
}

/** The flag wins; else the files' `executor:` (they must agree); else local. */
export function executorOf(flag: string | undefined, runs: PlannedRun[]): ExecutorName {
  if (flag !== undefined) return flag as ExecutorName;
  const named = [...new Set(runs.map((r) => r.executor).filter((e): e is ExecutorName => e !== undefined))];
  if (named.length > 1) {
    const names = named.join(', ');
    throw new UserError(`the experiment files name different executors (${names}): choose one with --executor`);
  }
  return named[0] ?? 'local';
}
