/**
 * The Slurm executor's execution (its entry is slurm.ts): the runs that are not finished go to the
 * cluster as one `sbatch --array` per resource set (usually one per invocation), each task running
 * the same single-run entry point as
 * the local executor (`sdd __run-one DIR`) on the shared run store. Tracking reads the queue
 * (squeue, scontrol) and the runs' own folders; the store is the truth: result.json means finished.
 *
 * Submission is serialised per store (a lock folder), and every submitted run records its task in
 * slurm.json, so a second `sdd run` sees a queued or running task and tracks it instead of
 * submitting it again. The per-run lock (runs/lock.ts) still guarantees one writer per run.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError } from '../errors.js';
import type { BackendChoice } from '../backend/choices.js';
import type { PlannedRun } from '../experiments/expand.js';
import { breakLock, readLock, tryLock, unlock } from '../runs/lock.js';
import type { RunStore } from '../runs/store.js';
import { readJson, writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { canonicalJson } from '../util/hash.js';
import { formatDuration } from '../util/progress.js';
import { EXIT_BUSY } from './child.js';
import { BIN, finishedAndCurrent, tail } from './local_run.js';
import { describeRun, type ExecuteOptions, type RunOutcome } from './executors.js';
import { jobScript, resourcesOf, slurmSchema, type SlurmSettings } from './slurm_job.js';
import {
  isActive,
  isQueued,
  jobFields,
  pollMs,
  queueStates,
  readRecord,
  RECORD,
  sleep,
  slurm,
  type SlurmRecord,
  type TaskState,
} from './slurm_queue.js';

// ---------------------------------------------------------------- the submission lock

async function withSubmitLock<T>(store: RunStore, fn: () => Promise<T>): Promise<T> {
  const dir = join(store.root, '.slurm');
  mkdirSync(dir, { recursive: true });
  const t0 = Date.now();
  while (!tryLock(dir)) {
    if (Date.now() - t0 > 120_000)
      throw new Error(
        `another sdd run has held ${join(dir, 'lock')} for 2 minutes; if no sdd run is submitting, remove it`,
      );
    await sleep(100);
  }
  try {
    return await fn();
  } finally {
    unlock(dir);
  }
}

// ---------------------------------------------------------------- the executor

interface Tracked {
  run: PlannedRun;
  dir: string;
  task: string;
  /** Submitted by this invocation (Ctrl-C cancels only these). */
  own: boolean;
  started?: number;
  goneSince?: number;
}

export async function execute(runs: PlannedRun[], opts: ExecuteOptions): Promise<RunOutcome[]> {
  const { store, progress } = opts;
  const outcomes = new Map<string, RunOutcome>();
  const todo = runs.filter((r) => {
    if (!finishedAndCurrent(r, store, progress)) return true;
    outcomes.set(r.id, { run: r, outcome: 'skipped', seconds: 0 });
    return false;
  });
  const tracked = await withSubmitLock(store, () => submit(todo, opts));
  if (opts.detach) {
    for (const t of tracked) outcomes.set(t.run.id, { run: t.run, outcome: 'submitted', seconds: 0, message: t.task });
  } else {
    for (const o of await track(tracked, opts)) outcomes.set(o.run.id, o);
  }
  return runs.map(
    (r) => outcomes.get(r.id) ?? { run: r, outcome: 'interrupted', seconds: 0, message: 'not submitted' },
  );
}

/** Decides per run: track its live task, or submit it; submits; records each task. */
async function submit(runs: PlannedRun[], opts: ExecuteOptions): Promise<Tracked[]> {
  const { store, progress } = opts;
  const dirs = runs.map((r) => store.dir(r.id));
  const records = dirs.map(readRecord);
  const locks = dirs.map(readLock);
  // One squeue for the recorded tasks and for the Slurm tasks holding run locks.
  const owners = locks.map((l) => (l.held ? l.owner?.slurm_job : undefined));
  const jobs = [...records.map((x) => x?.job), ...owners.map((o) => o?.split('_')[0])].filter(
    (j): j is string => j !== undefined,
  );
  const states = await queueStates(jobs);
  const tracked: Tracked[] = [];
  const fresh: PlannedRun[] = [];
  for (const [i, run] of runs.entries()) {
    const rec = records[i];
    const st = rec ? states.get(rec.task) : undefined;
    if (rec && st && isActive(st.state) && !store.isFinished(run.id)) {
      progress.log(`track ${describeRun(run)}: already ${st.state.toLowerCase()} as Slurm task ${rec.task}`);
      tracked.push({ run, dir: dirs[i], task: rec.task, own: false });
      continue;
    }
    // A lock left by a task that is no longer in the queue (killed on another node) is stale.
    const owner = owners[i];
    if (owner && !isActive(states.get(owner)?.state ?? '')) breakLock(dirs[i]);
    fresh.push(run);
  }
  const groups = new Map<string, { res: SlurmSettings; backend: BackendChoice; runs: PlannedRun[] }>();
  for (const run of fresh) {
    const backend = opts.backend ?? run.backend;
    const res = resourcesOf(run, slurmSchema().parse(opts.settings ?? {}), backend);
    const key = canonicalJson({ res, backend });
    const g = groups.get(key) ?? { res, backend, runs: [] };
    g.runs.push(run);
    groups.set(key, g);
  }
  for (const g of groups.values()) tracked.push(...(await submitArray(g.runs, g.res, g.backend, opts)));
  return tracked;
}

async function submitArray(
  runs: PlannedRun[],
  res: SlurmSettings,
  backend: BackendChoice,
  opts: ExecuteOptions,
): Promise<Tracked[]> {
  const { store, progress } = opts;
  const dirs = runs.map((r) => store.prepare(r.id, r.config, r.files));
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  const submission = join(store.root, '.slurm', `${stamp}-${randomBytes(3).toString('hex')}`);
  mkdirSync(submission, { recursive: true });
  writeFileAtomic(join(submission, 'runs.txt'), dirs.join('\n') + '\n');
  const name = `sdd-${runs[0].config.experiment}`.replace(/[^A-Za-z0-9_.-]/g, '_');
  const script = jobScript({
    name,
    count: runs.length,
    res,
    submission,
    backend,
    node: process.env.SDD_SLURM_NODE ?? process.execPath,
    bin: process.env.SDD_SLURM_BIN ?? BIN,
  });
  writeFileAtomic(join(submission, 'job.sh'), script);
  const r = await slurm('sbatch', ['--parsable', join(submission, 'job.sh')]);
  if (r.code !== 0) {
    // Nothing half-written: the refused submission leaves no folder behind (the script is in the message).
    rmSync(submission, { recursive: true, force: true });
    throw new UserError(
      `sbatch refused the job: ${r.stderr.trim().split('\n').pop()} (resources ${canonicalJson(res)})`,
    );
  }
  const job = r.stdout.trim().split(';')[0];
  const at = new Date().toISOString();
  writeJsonAtomic(join(submission, 'submission.json'), {
    job,
    runs: runs.map((x) => x.id),
    resources: res,
    backend,
    submitted_at: at,
  });
  progress.log(
    `submitted Slurm array job ${job}: ${runs.length} run${runs.length === 1 ? '' : 's'}${res.max_parallel ? `, at most ${res.max_parallel} at a time` : ''} (${submission})`,
  );
  return runs.map((run, index) => {
    const task = `${job}_${index}`;
    const rec: SlurmRecord = { task, job, index, submitted_at: at, submission };
    writeJsonAtomic(join(dirs[index], RECORD), rec);
    return { run, dir: dirs[index], task, own: true };
  });
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

async function track(tracked: Tracked[], opts: ExecuteOptions): Promise<RunOutcome[]> {
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
