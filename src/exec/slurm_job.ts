/**
 * What the Slurm executor asks the cluster for: the `slurm:` settings of experiment files and their
 * `sdd run` flags, one run's resources (flags over the file over the method's defaults), and the
 * array job's script.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { namedGpu, type BackendChoice } from '../backend/choices.js';
import type { PlannedRun } from '../experiments/expand.js';
import { DEFAULT_ENGINE, getEngine } from '../methods/engine.js';
import { getMethod } from '../methods/registry.js';
import type { ExecutorSettings } from './executors.js';

/** Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S. */
const SLURM_TIME = /^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2})$/;

/**
 * Cluster resources per run (one Slurm array task). Unset keys fall back to the method's defaults,
 * then to the cluster's own.
 */
export function slurmSchema() {
  return z.strictObject({
    partition: z.string().min(1).optional(),
    time: z
      .string()
      .regex(SLURM_TIME, 'a Slurm time: minutes, M:S, H:M:S, D-H, D-H:M or D-H:M:S')
      .optional()
      .describe('time limit per run'),
    cpus: z.number().int().positive().optional().describe('--cpus-per-task'),
    mem: z
      .string()
      .regex(/^\d+[KMGT]?$/, 'a Slurm memory size such as 8G or 16000M')
      .optional()
      .describe('--mem per run'),
    gpus: z.number().int().nonnegative().optional().describe('--gres=gpu:N per run'),
    account: z.string().min(1).optional(),
    qos: z.string().min(1).optional(),
    max_parallel: z.number().int().positive().optional().describe('array throttle (%K): tasks running at once'),
    requeue: z
      .boolean()
      .optional()
      .describe('let Slurm requeue a task after a node failure or preemption (it resumes from its checkpoint)'),
    extra: z
      .array(z.string().regex(/^--?[A-Za-z]/, 'an sbatch option such as --constraint=a100'))
      .optional()
      .describe('more #SBATCH lines, as sbatch options'),
  });
}
export type SlurmSettings = z.output<ReturnType<typeof slurmSchema>>;

export const SLURM_SETTINGS: ExecutorSettings = {
  key: 'slurm',
  describe: 'Slurm resources per run (executor: slurm)',
  schema: slurmSchema,
  flags: {
    partition: { setting: 'partition', type: 'string', describe: 'slurm: partition' },
    time: { setting: 'time', type: 'string', describe: 'slurm: time limit per run (e.g. 2:00:00)' },
    cpus: { setting: 'cpus', type: 'number', describe: 'slurm: CPUs per run' },
    mem: { setting: 'mem', type: 'string', describe: 'slurm: memory per run (e.g. 16G)' },
    gpus: { setting: 'gpus', type: 'number', describe: 'slurm: GPUs per run (--gres=gpu:N)' },
    account: { setting: 'account', type: 'string', describe: 'slurm: account' },
    qos: { setting: 'qos', type: 'string', describe: 'slurm: QoS' },
    sbatch: {
      setting: 'extra',
      type: 'string',
      array: true,
      describe: 'slurm: another #SBATCH option, e.g. --sbatch=--constraint=a100 (repeatable)',
    },
    'max-parallel': {
      setting: 'max_parallel',
      type: 'number',
      describe: 'slurm: tasks of the array running at once (%K throttle)',
    },
    requeue: {
      setting: 'requeue',
      type: 'boolean',
      describe: 'slurm: let Slurm requeue a task after a node failure or preemption (--no-requeue forbids it)',
    },
  },
};

/**
 * The resources of one run: CLI flags over the experiment file's `slurm:` over the method's
 * defaults. A run on a GPU backend (webgpu, node-gpu: named, not auto, since the login node cannot
 * see the compute nodes' devices) asks for one GPU unless told otherwise.
 */
export function resourcesOf(
  run: PlannedRun,
  cli: SlurmSettings = {},
  backend: BackendChoice = run.backend,
): SlurmSettings {
  const method = getMethod(run.config.method.name).resources ?? {};
  const defined = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  // A GPU backend, or an engine that computes on one (torch), asks for one GPU per task.
  const gpu = namedGpu(backend) || getEngine(run.config.engine?.name ?? DEFAULT_ENGINE).wantsGpu ? { gpus: 1 } : {};
  const file = slurmSchema().parse(run.settings.slurm ?? {});
  return { ...defined(method), ...gpu, ...defined(file), ...defined(cli) } as SlurmSettings;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function jobScript(opts: {
  name: string;
  count: number;
  res: SlurmSettings;
  submission: string;
  backend?: string;
  node: string;
  bin: string;
}): string {
  const { res } = opts;
  const lines = [
    '#!/bin/bash',
    `#SBATCH --job-name=${opts.name}`,
    `#SBATCH --array=0-${opts.count - 1}${res.max_parallel ? `%${res.max_parallel}` : ''}`,
    `#SBATCH --output=${join(opts.submission, 'slurm-%A_%a.out')}`,
    // A requeued task appends to its output instead of truncating the first attempt's.
    '#SBATCH --open-mode=append',
  ];
  if (res.cpus) lines.push(`#SBATCH --cpus-per-task=${res.cpus}`);
  if (res.mem) lines.push(`#SBATCH --mem=${res.mem}`);
  if (res.time) lines.push(`#SBATCH --time=${res.time}`);
  if (res.gpus) lines.push(`#SBATCH --gres=gpu:${res.gpus}`);
  if (res.partition) lines.push(`#SBATCH --partition=${res.partition}`);
  if (res.account) lines.push(`#SBATCH --account=${res.account}`);
  if (res.qos) lines.push(`#SBATCH --qos=${res.qos}`);
  if (res.requeue !== undefined) lines.push(res.requeue ? '#SBATCH --requeue' : '#SBATCH --no-requeue');
  for (const x of res.extra ?? []) lines.push(`#SBATCH ${x}`);
  lines.push(
    'set -euo pipefail',
    `DIR=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" ${quote(join(opts.submission, 'runs.txt'))})`,
    '[ -n "$DIR" ] || { echo "no run for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2; }',
    'export SDD_CHILD=1',
    // The run's own output.txt gets what the local executor would write there.
    `exec ${quote(opts.node)} ${quote(opts.bin)} __run-one "$DIR"${opts.backend && opts.backend !== 'auto' ? ` --backend ${opts.backend}` : ''} >>"$DIR/output.txt" 2>&1`,
    '',
  );
  return lines.join('\n');
}
