/**
 * Where each planned run stands, from the store and, for runs handed to Slurm, the queue: what
 * `sdd status` prints. Read-only: it never submits, locks or changes a run.
 */
import { join } from 'node:path';
import type { PlannedRun } from '../experiments/expand.js';
import { readJson } from '../util/atomic.js';
import { readLock } from '../runs/lock.js';
import type { RunStore } from '../runs/store.js';
import { modelsChanged } from './stale.js';
import { isActive, isQueued, slurmStatus } from './slurm.js';

export type RunState = 'finished' | 'stale' | 'running' | 'queued' | 'failed' | 'partial' | 'not started';

export interface RunStatus {
  id: string;
  state: RunState;
  detail: string;
  /** Steps done and total, from the run's progress.json while it runs. */
  progress: { done: number; total: number } | null;
  slurm_task: string | null;
}

export async function runStatuses(runs: PlannedRun[], store: RunStore): Promise<RunStatus[]> {
  const dirs = runs.map((r) => store.dir(r.id));
  const slurm = await slurmStatus(dirs);
  return runs.map((r, i) => {
    const dir = dirs[i];
    const s = slurm[i];
    const task = s?.record.task ?? null;
    const base = { id: r.id, progress: null, slurm_task: task };
    if (store.isFinished(r.id)) {
      const changed = modelsChanged(store, r);
      return changed.length ? { ...base, state: 'stale', detail: `model weights changed since it ran (${changed.join(', ')})` } : { ...base, state: 'finished', detail: '' };
    }
    const prog = readJson<{ done: number; total: number }>(join(dir, 'progress.json'));
    const progress = prog ? { done: prog.done, total: prog.total } : null;
    const at = progress ? ` at ${progress.done}/${progress.total}` : '';
    if (s?.state && isActive(s.state.state)) {
      if (isQueued(s.state.state)) {
        return { ...base, state: 'queued', detail: `Slurm task ${task} ${s.state.state.toLowerCase()} (${s.state.reason})` };
      }
      return { ...base, progress, state: 'running', detail: `Slurm task ${task} ${s.state.state.toLowerCase()} on ${s.state.node}${at}` };
    }
    const lock = readLock(dir);
    if (lock.held && lock.alive) {
      return { ...base, progress, state: 'running', detail: `pid ${lock.owner?.pid ?? '?'} on ${lock.owner?.host ?? '?'}${at}` };
    }
    const err = readJson<{ kind: string; message: string }>(join(dir, 'error.json'));
    const ended = s?.state ? `Slurm task ${task} ${s.state.state.toLowerCase()}${s.state.reason && s.state.reason !== 'None' ? ` (${s.state.reason})` : ''}` : task ? `Slurm task ${task} left the queue` : '';
    if (err) return { ...base, state: 'failed', detail: [ended, `${err.kind}: ${err.message}`].filter(Boolean).join(': ') };
    const ckpt = readJson<{ step: number }>(join(dir, 'checkpoint.json'));
    if (ckpt) return { ...base, progress, state: 'partial', detail: [ended, `checkpoint at step ${ckpt.step}; resumes on the next sdd run`].filter(Boolean).join('; ') };
    if (task) return { ...base, state: 'failed', detail: `${ended} without a result` };
    return { ...base, state: 'not started', detail: '' };
  });
}
