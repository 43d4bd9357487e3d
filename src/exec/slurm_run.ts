/**
 * The Slurm executor's execution (its entry is slurm.ts): the runs that are not finished go to the
 * cluster as one `sbatch --array` per resource set (usually one per invocation), each task running
 * the same single-run entry point as the local executor (`sdd __run-one DIR`) on the shared run
 * store. Tracking (slurm_track.ts) reads the queue (squeue, scontrol) and the runs' own folders;
 * the store is the truth: result.json means finished.
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
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { canonicalJson } from '../util/hash.js';
import { BIN, finishedAndCurrent } from './local_run.js';
import { describeRun, type ExecuteOptions, type RunOutcome } from './executors.js';
import { jobScript, resourcesOf, slurmSchema, type SlurmSettings } from './slurm_job.js';
import { isActive, queueStates, readRecord, RECORD, sleep, slurm, type SlurmRecord } from './slurm_queue.js';
import { track, type Tracked } from './slurm_track.js';

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
