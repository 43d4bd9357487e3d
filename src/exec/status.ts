/**
 * Where each planned run stands, from the store and, for runs handed to an executor's queue, the
 * queue (each executor's status hook, e.g. Slurm's): what `sdd status` prints. Read-only: it never
 * submits, locks or changes a run.
 */
import { join } from 'node:path';
import type { PlannedRun } from '../experiments/expand.js';
import { readJson } from '../util/atomic.js';
import { readLock } from '../runs/lock.js';
import type { RunStore } from '../runs/store.js';
import { modelsChanged } from './stale.js';
import { allExecutors, type QueueState } from './executors.js';

export type RunState = 'finished' | 'stale' | 'running' | 'queued' | 'failed' | 'partial' | 'not started';

/** A planned run's standing (the store's own RunStatus is the state of a run folder alone). */
export interface PlannedRunStatus {
  id: string;
  state: RunState;
  detail: string;
  /** Steps done and total, from the run's progress.json while it runs. */
  progress: { done: number; total: number } | null;
  /** The queue's id of the task that runs it (e.g. a Slurm array task "123_4"), if one was recorded. */
  task: string | null;
}

/** Every executor's status hook over the run folders: the first that knows a run's task wins. */
async function queueStates(dirs: string[]): Promise<Array<QueueState | null>> {
  const out: Array<QueueState | null> = dirs.map(() => null);
  for (const e of allExecutors()) {
    if (!e.queueStates) continue;
    const got = await e.queueStates(dirs);
    got.forEach((q, i) => (out[i] ??= q));
  }
  return out;
}

export async function runStatuses(runs: PlannedRun[], store: RunStore): Promise<PlannedRunStatus[]> {
  const dirs = runs.map((r) => store.dir(r.id));
  const queued = await queueStates(dirs);
  return runs.map((r, i) => statusOf(r, store, dirs[i], queued[i]));
}

function statusOf(r: PlannedRun, store: RunStore, dir: string, q: QueueState | null): PlannedRunStatus {
  const base = { id: r.id, progress: null, task: q?.task ?? null };
  if (store.isFinished(r.id)) {
    const changed = modelsChanged(store, r);
    if (changed.length)
      return { ...base, state: 'stale', detail: `model weights changed since it ran (${changed.join(', ')})` };
    return { ...base, state: 'finished', detail: '' };
  }
  const prog = readJson<{ done: number; total: number }>(join(dir, 'progress.json'));
  const progress = prog ? { done: prog.done, total: prog.total } : null;
  const at = progress ? ` at ${progress.done}/${progress.total}` : '';
  if (q?.phase === 'queued') return { ...base, state: 'queued', detail: q.detail };
  if (q?.phase === 'running') return { ...base, progress, state: 'running', detail: `${q.detail}${at}` };
  const lock = readLock(dir);
  if (lock.held && lock.alive) {
    return {
      ...base,
      progress,
      state: 'running',
      detail: `pid ${lock.owner?.pid ?? '?'} on ${lock.owner?.host ?? '?'}${at}`,
    };
  }
  const ended = q?.detail ?? '';
  const err = readJson<{ kind: string; message: string }>(join(dir, 'error.json'));
  if (err)
    return { ...base, state: 'failed', detail: [ended, `${err.kind}: ${err.message}`].filter(Boolean).join(': ') };
  const ckpt = readJson<{ step: number }>(join(dir, 'checkpoint.json'));
  if (ckpt) {
    const detail = [ended, `checkpoint at step ${ckpt.step}; resumes on the next sdd run`].filter(Boolean).join('; ');
    return { ...base, progress, state: 'partial', detail };
  }
  if (q) return { ...base, state: 'failed', detail: `${ended} without a result` };
  return { ...base, state: 'not started', detail: '' };
}
