/**
 * Following submitted Slurm tasks to their end (slurm_run.ts submits them): each poll reads the
 * queue (squeue, scontrol) and the runs' own folders, where result.json means finished; a task
 * that leaves the queue without one fails with Slurm's reason in one line. Ctrl-C cancels only the
 * tasks this invocation submitted.
 */
import { join } from 'node:path';
import type { PlannedRun } from '../experiments/expand.js';
import { readLock } from '../runs/lock.js';
import { readJson } from '../util/atomic.js';
import { formatDuration } from '../util/progress.js';
import { EXIT_BUSY } from './child.js';
import { tail } from './local_run.js';
import { describeRun, type ExecuteOptions, type RunOutcome } from './executors.js';
import { isActive, isQueued, jobFields, pollMs, queueStates, sleep, slurm, type TaskState } from './slurm_queue.js';

/** A submitted run and its Slurm task. */
export interface Tracked {
  run: PlannedRun;
  dir: string;
  task: string;
  /** Submitted by this invocation (Ctrl-C cancels only these). */
  own: boolean;
  started?: number;
  goneSince?: number;
}

/** Why a task that left the queue (or ended) did not finish, in one line. */
function failureReason(t: Tracked, st: TaskState | undefined, fields: Record<string, string>): string {
  const state = st?.state ?? fields.JobState ?? 'GONE';
  const node = st?.node || fields.NodeList || '?';
  const err = readJson<{ message: string }>(join(t.dir, 'error.json'))?.message ?? null;
  const step = readJson<{ step: number }>(join(t.dir, 'checkpoint.json'))?.step ?? null;
  const resume =
    step !== null
      ? `; resumes from its checkpoint at step ${step} on the next sdd run`
      : '; starts over on the next sdd run';
  const last = tail(join(t.dir, 'output.txt'), 3).replace(/\s*\n\s*/g, ' | ');
  switch (state) {
    case 'TIMEOUT':
      return `Slurm task ${t.task}: time limit ${fields.TimeLimit ?? ''} reached on ${node}${resume}`;
    case 'OUT_OF_MEMORY':
      return `Slurm task ${t.task}: out of memory on ${node} (raise slurm.mem / --mem)${resume}`;
    case 'NODE_FAIL':
      return `Slurm task ${t.task}: node ${node} failed${resume}`;
    case 'CANCELLED':
      return `Slurm task ${t.task}: cancelled (scancel)${resume}`;
    case 'PREEMPTED':
      return `Slurm task ${t.task}: preempted${resume}`;
    case 'BOOT_FAIL':
    case 'DEADLINE':
      return `Slurm task ${t.task}: ${state.toLowerCase()}${resume}`;
    case 'GONE':
      return `Slurm task ${t.task} left the queue without a result (Slurm no longer knows why; see ${t.dir}/output.txt)${last ? `: ${last}` : ''}`;
    default: {
      const code = fields.ExitCode ? ` exit code ${fields.ExitCode.split(':')[0]}` : '';
      return `Slurm task ${t.task} ${state.toLowerCase()}${code}: ${err ?? last ?? 'no output'}`;
    }
  }
}

/** Follows submitted tasks to their end: each poll reads the queue and the runs' own folders. */
class Tracker {
  readonly done = new Map<string, RunOutcome>();
  private lastCounts = '';
  private readonly t0 = Date.now();

  constructor(
    private readonly tracked: Tracked[],
    private readonly opts: ExecuteOptions,
  ) {}

  open(): Tracked[] {
    return this.tracked.filter((t) => !this.done.has(t.run.id));
  }

  /** Ends a run's tracking: its bar (started now if it never ran here) closes with `status`. */
  settle(t: Tracked, outcome: RunOutcome['outcome'], status: (seconds: number) => string, message?: string): void {
    const { progress } = this.opts;
    if (t.started === undefined) progress.start(t.run.id, describeRun(t.run));
    const seconds = t.started ? (Date.now() - t.started) / 1000 : 0;
    progress.finish(t.run.id, status(seconds));
    this.done.set(t.run.id, { run: t.run, outcome, seconds, message });
  }

  finished(t: Tracked, withTime: boolean): void {
    const outcome = t.own ? 'finished' : 'finished-elsewhere';
    const time = (secs: number) => (withTime ? ` ${formatDuration(secs)}` : '');
    this.settle(t, outcome, (secs) => `ok          ${describeRun(t.run)}${time(secs)} (Slurm task ${t.task})`);
  }

  /**
   * Ctrl-C: cancel this invocation's tasks and wait until they have left the queue; tasks another
   * sdd run submitted are its own to follow. Then every unfinished run is interrupted.
   */
  async interrupt(open: Tracked[]): Promise<void> {
    await cancel(
      open.filter((t) => t.own),
      this.opts,
    );
    for (const t of open) {
      if (this.opts.store.isFinished(t.run.id)) this.finished(t, false);
      else {
        const why = t.own ? 'cancelled; resumes on the next sdd run' : 'left running: another sdd run submitted it';
        this.settle(t, 'interrupted', () => `interrupted ${describeRun(t.run)} (Slurm task ${t.task} ${why})`, why);
      }
    }
  }

  /** One poll over the open runs; logs the counts when they change. */
  async poll(open: Tracked[]): Promise<void> {
    const states = await queueStates(open.map((t) => t.task.split('_')[0]));
    const seen = { queued: 0, running: 0 };
    for (const t of open) {
      const phase = await this.pollOne(t, states.get(t.task));
      if (phase) seen[phase]++;
    }
    const failed = [...this.done.values()].filter((o) => o.outcome === 'failed').length;
    const counts = `${seen.queued} queued, ${seen.running} running, ${this.done.size - failed} finished, ${failed} failed`;
    if (counts !== this.lastCounts)
      this.opts.progress.log(`slurm: ${counts} (${formatDuration((Date.now() - this.t0) / 1000)})`);
    this.lastCounts = counts;
  }

  /** Where one run stands: still queued or running (its phase), or settled here (null). */
  private async pollOne(t: Tracked, st: TaskState | undefined): Promise<'queued' | 'running' | null> {
    if (this.opts.store.isFinished(t.run.id)) {
      this.finished(t, true);
      return null;
    }
    if (st && isActive(st.state)) {
      t.goneSince = undefined;
      return isQueued(st.state) ? this.queued(t, st) : this.running(t, st);
    }
    // Ended or gone without result.json. Give a shared filesystem a moment to show the result.
    t.goneSince ??= Date.now();
    if (Date.now() - t.goneSince < 2 * pollMs()) return null;
    const fields = await jobFields(t.task);
    // EXIT_BUSY: another live process holds the run; follow its lock, as the local executor does.
    if (st?.state === 'FAILED' && busyElsewhere(t, fields)) return null;
    const reason = failureReason(t, st, fields);
    this.settle(t, 'failed', () => `FAILED      ${describeRun(t.run)}: ${reason}`, reason);
    return null;
  }

  private queued(t: Tracked, st: TaskState): 'queued' {
    if (t.started !== undefined) {
      // Requeued (node failure, preemption, scontrol requeue): it resumes from its checkpoint
      // when it starts again; its bar starts over then.
      this.opts.progress.finish(t.run.id, `requeued    ${describeRun(t.run)} (Slurm task ${t.task}: ${st.reason})`);
      t.started = undefined;
    }
    return 'queued';
  }

  private running(t: Tracked, st: TaskState): 'running' {
    const { progress } = this.opts;
    if (t.started === undefined) {
      t.started = Date.now();
      progress.start(t.run.id, describeRun(t.run));
    }
    const p = readJson<{ done: number; total: number; label: string | null }>(join(t.dir, 'progress.json'));
    if (p) progress.update(t.run.id, p.done, p.total, `${st.node}${p.label ? ` ${p.label}` : ''}`);
    return 'running';
  }
}

export async function track(tracked: Tracked[], opts: ExecuteOptions): Promise<RunOutcome[]> {
  const tracker = new Tracker(tracked, opts);
  for (;;) {
    const open = tracker.open();
    if (open.length === 0) break;
    if (opts.signal.aborted) {
      await tracker.interrupt(open);
      break;
    }
    await tracker.poll(open);
    if (tracker.open().length === 0) break;
    await sleep(pollMs());
  }
  return tracked.map((t) => tracker.done.get(t.run.id)!);
}

/** True while another live process holds the run's lock (the task exited EXIT_BUSY). */
function busyElsewhere(t: Tracked, fields: Record<string, string>): boolean {
  if (fields.ExitCode?.split(':')[0] !== String(EXIT_BUSY)) return false;
  const l = readLock(t.dir);
  return l.held && l.alive;
}

/** Ctrl-C: cancels this invocation's unfinished tasks and waits until they have left the queue. */
async function cancel(own: Tracked[], opts: ExecuteOptions): Promise<void> {
  if (own.length === 0) return;
  const tasks = own.map((t) => t.task);
  opts.progress.log(
    `cancelling ${tasks.length} Slurm task${tasks.length === 1 ? '' : 's'} (scancel); they stay resumable`,
  );
  await slurm('scancel', tasks);
  const t0 = Date.now();
  while (Date.now() - t0 < 180_000) {
    const states = await queueStates([...new Set(tasks.map((t) => t.split('_')[0]))]);
    if (!tasks.some((t) => isActive(states.get(t)?.state ?? ''))) return;
    await sleep(Math.min(pollMs(), 500));
  }
  opts.progress.log('some cancelled tasks are still in the queue after 3 minutes; see squeue');
}
