/**
 * Talking to Slurm's queue: its client commands (squeue, scontrol, sbatch, scancel), the states of
 * array tasks, and the slurm.json record each submitted run folder keeps of its task. Read-only
 * helpers of the Slurm executor (slurm.ts) and its `sdd status` hook.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { UserError } from '../errors.js';
import { readJson } from '../util/atomic.js';

/** What a run folder records about the Slurm task that executes it. */
export interface SlurmRecord {
  /** "<array job id>_<task id>", as squeue prints it. */
  task: string;
  job: string;
  index: number;
  submitted_at: string;
  /** The submission folder: job script, run list, Slurm's own output. */
  submission: string;
}

export const RECORD = 'slurm.json';
const ACTIVE = new Set([
  'PENDING',
  'RUNNING',
  'CONFIGURING',
  'COMPLETING',
  'REQUEUED',
  'REQUEUE_FED',
  'REQUEUE_HOLD',
  'RESIZING',
  'SUSPENDED',
  'STOPPED',
  'SIGNALING',
  'STAGE_OUT',
  'RESV_DEL_HOLD',
]);
const QUEUED = new Set(['PENDING', 'REQUEUED', 'REQUEUE_FED', 'REQUEUE_HOLD']);

/** Still in the queue (waiting, running, or on its way out): not to be submitted again. */
export function isActive(state: string): boolean {
  return ACTIVE.has(state);
}

/** Waiting to (re)start. */
export function isQueued(state: string): boolean {
  return QUEUED.has(state);
}
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll interval: gentle on slurmctld by default; the tests' cluster answers faster. */
export function pollMs(): number {
  const v = Number(process.env.SDD_SLURM_POLL_MS);
  return Number.isFinite(v) && v > 0 ? v : 3000;
}

// ---------------------------------------------------------------- the Slurm commands

export async function slurm(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await execa(cmd, args, { reject: false, stdin: 'ignore', timeout: 60_000 });
    if (r.exitCode === undefined && /ENOENT/.test(String((r as { code?: unknown }).code ?? r.message))) {
      throw new UserError(
        `--executor slurm: ${cmd} not found on PATH (run on a machine with Slurm's client commands, e.g. a login node)`,
      );
    }
    return { code: r.exitCode ?? 1, stdout: String(r.stdout), stderr: String(r.stderr) };
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`--executor slurm: ${cmd} failed to start: ${(e as Error).message}`);
  }
}

export interface TaskState {
  state: string;
  reason: string;
  node: string;
}

/** "123_[0-5%2]", "123_[1,4-6]" or "123_7" → the task keys "123_0", …; a plain job id stays as is. */
export function expandTaskIds(id: string): string[] {
  const m = /^(\d+)_\[([^\]]+)\]$/.exec(id);
  if (!m) return [id];
  const out: string[] = [];
  for (const part of m[2].split('%')[0].split(',')) {
    const [a, b] = part.split('-').map(Number);
    for (let i = a; i <= (b ?? a); i++) out.push(`${m[1]}_${i}`);
  }
  return out;
}

/** States of the given array jobs' tasks, by task key; a task missing has left the queue. */
export async function queueStates(jobs: string[]): Promise<Map<string, TaskState>> {
  const states = new Map<string, TaskState>();
  if (jobs.length === 0) return states;
  const r = await slurm('squeue', ['-h', '-t', 'all', '-j', [...new Set(jobs)].join(','), '-o', '%i|%T|%r|%N']);
  if (r.code !== 0) {
    // Every job id unknown (all purged after MinJobAge): squeue refuses the list.
    if (/Invalid job id/i.test(r.stderr)) return states;
    throw new Error(`squeue failed: ${r.stderr.trim()}`);
  }
  for (const line of r.stdout.split('\n')) {
    const [id, state, reason, node] = line.trim().split('|');
    if (!id || !state) continue;
    for (const key of expandTaskIds(id)) states.set(key, { state, reason: reason ?? '', node: node ?? '' });
  }
  return states;
}

/** `scontrol show job -o` fields of one task (exit code, node, times), or {} once purged. */
export async function jobFields(task: string): Promise<Record<string, string>> {
  const r = await slurm('scontrol', ['show', 'job', '-o', task]);
  if (r.code !== 0) return {};
  const fields: Record<string, string> = {};
  for (const kv of r.stdout.split('\n')[0].split(' ')) {
    const i = kv.indexOf('=');
    if (i > 0) fields[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return fields;
}

export function readRecord(runDir: string): SlurmRecord | null {
  return readJson<SlurmRecord>(join(runDir, RECORD));
}

/** For `sdd status`: where each run's Slurm task stands (null: no task recorded). */
export async function slurmStatus(
  dirs: string[],
): Promise<Array<{ record: SlurmRecord; state: TaskState | null } | null>> {
  const records = dirs.map(readRecord);
  const states = await queueStates(records.filter((x): x is SlurmRecord => x !== null).map((x) => x.job));
  return records.map((r) => (r ? { record: r, state: states.get(r.task) ?? null } : null));
}

/** The client commands exist and reach a controller: else one line saying so, before anything is written. */
export async function preflight(): Promise<void> {
  // Slurm's commands retry a missing SLURM_CONF for a minute each before saying so.
  const conf = process.env.SLURM_CONF;
  if (conf !== undefined && (conf === '' || !existsSync(conf)))
    throw new UserError(`--executor slurm: SLURM_CONF=${conf}: no such file`);
  for (const cmd of ['sbatch', 'scancel', 'scontrol']) await slurm(cmd, ['--version']);
  const r = await slurm('squeue', ['-h', '-o', '%i', '--me']);
  if (r.code !== 0)
    throw new UserError(
      `--executor slurm: squeue cannot reach the cluster: ${r.stderr.trim().split('\n').pop() ?? `exit ${r.code}`}`,
    );
}
