/**
 * `sdd run --executor slurm` end to end against a real Slurm cluster (test/slurm_cluster.ts):
 * arrays with a throttle, the same results as the local executor, failures with reasons, scancel
 * and time-limit kills resumed from checkpoints, concurrent invocations, --detach with
 * `sdd status`, and Ctrl-C. The tests run concurrently: the time-limit one alone takes 60–90 s
 * (Slurm enforces limits in whole minutes, checked every 30 s).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, sdd, tmp, waitFor, writeFiles, sleep } from './helpers.js';
import { slurmMissing, startSlurm, type SlurmCluster } from './slurm_cluster.js';

const missing = slurmMissing();
if (missing) process.stderr.write(`# slurm tests skipped: ${missing}\n`);

let cluster: SlurmCluster;
const env = () => ({ ...cluster.env, SDD_SLURM_POLL_MS: '300' });
const run = (args: string[], extra: Record<string, string> = {}) => sdd(args, { env: { ...env(), ...extra } });

interface Planned {
  id: string;
}
async function plan(file: string, store: string): Promise<string[]> {
  const r = await sdd(['plan', file, '--store', store, '--json']);
  assert.equal(r.exitCode, 0, r.all);
  return (JSON.parse(r.stdout) as Planned[]).map((p) => p.id);
}
const read = (path: string) => (existsSync(path) ? readFileSync(path, 'utf-8') : '');
const count = (text: string, re: RegExp) => (text.match(re) ?? []).length;
/** A task's state as squeue shows it ('' once it has left the queue). */
async function taskState(task: string): Promise<string> {
  const out = await cluster.cmd('squeue', ['-h', '-t', 'all', '-j', task.split('_')[0], '-o', '%i|%T']);
  return (
    out
      .split('\n')
      .find((l) => l.startsWith(`${task}|`))
      ?.split('|')[1] ?? ''
  );
}

async function until(cond: () => Promise<boolean>, timeoutMs: number, what: string, everyMs = 300): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
const json = <T>(path: string) => JSON.parse(read(path)) as T;
/** The run's Slurm task record and its checkpoint's step. */
const record = (store: string, id: string) => json<{ task: string; job: string }>(join(store, id, 'slurm.json'));
const checkpointStep = (store: string, id: string) => json<{ step: number }>(join(store, id, 'checkpoint.json')).step;
const metrics = (store: string, id: string) => json<{ metrics: unknown }>(join(store, id, 'result.json')).metrics;

describe('slurm executor', { skip: missing ?? false, concurrency: true }, () => {
  before(async () => {
    cluster = await startSlurm();
  });
  after(async () => {
    await cluster?.stop();
  });

  test("a sweep of 6 runs goes out as one array with throttle 2 and gives the local executor's results", async () => {
    const d = tmp();
    writeFiles(d, {
      'e.yaml':
        'name: sweep6\nmethod: {name: toy_fit, params: {steps: 30, checkpoint_every: 10}}\nseeds: [0, 1, 2]\nsweep: {method.params.hidden: [8, 16]}\n',
    });
    const file = join(d, 'e.yaml');
    const [slurmStore, localStore] = [join(d, 'slurm'), join(d, 'local')];
    const [viaSlurm, viaLocal] = await Promise.all([
      run(['run', file, '--store', slurmStore, '--executor', 'slurm', '--max-parallel', '2']),
      sdd(['run', file, '--store', localStore, '-j', '2']),
    ]);
    assert.equal(viaSlurm.exitCode, 0, viaSlurm.all);
    assert.equal(viaLocal.exitCode, 0, viaLocal.all);
    assert.match(viaSlurm.all, /submitted Slurm array job \d+: 6 runs, at most 2 at a time/);
    const subs = readdirSync(join(slurmStore, '.slurm')).filter((n) => !n.startsWith('lock'));
    assert.equal(subs.length, 1, 'one sbatch --array for the invocation');
    assert.match(read(join(slurmStore, '.slurm', subs[0], 'job.sh')), /#SBATCH --array=0-5%2/);
    const ids = await plan(file, slurmStore);
    assert.equal(ids.length, 6);
    const spans: Array<[number, number]> = [];
    for (const id of ids) {
      // Same run ids, same numbers (same backend), whichever executor ran them.
      assert.deepEqual(metrics(slurmStore, id), metrics(localStore, id), `run ${id}`);
      const envJson = json<{
        cluster: { slurm: { array_job_id: string; array_task_id: string; node: string; partition: string } };
      }>(join(slurmStore, id, 'env.json'));
      assert.equal(envJson.cluster.slurm.node, 'localhost');
      assert.equal(envJson.cluster.slurm.partition, 'debug');
      assert.match(envJson.cluster.slurm.array_task_id, /^[0-5]$/);
      const res = json<{ started_at: string; finished_at: string }>(join(slurmStore, id, 'result.json'));
      spans.push([Date.parse(res.started_at), Date.parse(res.finished_at)]);
    }
    // The throttle held: never more than 2 runs executing at once.
    const most = Math.max(...spans.map(([s]) => spans.filter(([a, b]) => a <= s && s < b).length));
    assert.ok(most <= 2, `at most 2 runs at a time, saw ${most}`);
    // A second invocation submits nothing: every run is finished.
    const again = await run(['run', file, '--store', slurmStore, '--executor', 'slurm']);
    assert.equal(again.exitCode, 0, again.all);
    assert.doesNotMatch(again.all, /submitted/);
    assert.equal(count(again.all, /skip /g), 6);
  });

  test('a task that fails says why; the others finish', async () => {
    const d = tmp();
    writeFiles(d, {
      'e.yaml':
        'name: onefails\nmethod: {name: toy_fit, params: {steps: 20}}\nsweep: {method.params.fail_at_step: [3, 1000]}\n',
    });
    const store = join(d, 'runs');
    const r = await run(['run', join(d, 'e.yaml'), '--store', store, '--executor', 'slurm']);
    assert.equal(r.exitCode, 1, r.all);
    assert.match(r.all, /FAILED .*Slurm task \d+_\d failed exit code 1: fault injected at step 3/);
    assert.match(r.stdout, /1 ok, 1 failed/);
    const st = await run(['status', join(d, 'e.yaml'), '--store', store]);
    assert.equal(st.exitCode, 1, st.all);
    assert.match(st.stdout, /failed .*fault injected at step 3/);
    assert.match(st.stdout, /2 runs: 1 finished, 1 failed/);
  });

  test('scancel of a running task mid-way: the next sdd run resumes it from its checkpoint, nothing duplicated or lost', async () => {
    const d = tmp();
    writeFiles(d, {
      'e.yaml': 'name: cancelme\nmethod: {name: toy_fit, params: {steps: 80, checkpoint_every: 10}}\nseeds: [0, 1]\n',
    });
    const file = join(d, 'e.yaml');
    const store = join(d, 'runs');
    const [slow, other] = await plan(file, store);
    // Both submitted detached; one is paced so it is still running when cancelled.
    const sub = await run(['run', file, '--store', store, '--executor', 'slurm', '--detach'], {
      SDD_TEST_STEP_MS: '150',
    });
    assert.equal(sub.exitCode, 0, sub.all);
    assert.match(sub.stdout, /2 submitted/);
    await waitFor(() => existsSync(join(store, slow, 'checkpoint.json')), 60_000, 'a checkpoint of the paced run');
    const task = record(store, slow).task;
    await cluster.cmd('scancel', [task]);
    await until(
      async () => (await taskState(task)) === 'CANCELLED' && !existsSync(join(store, slow, 'lock')),
      30_000,
      'the cancelled task to leave, releasing its lock',
    );
    const mid = await run(['status', file, '--store', store]);
    assert.match(mid.stdout, new RegExp(`${slow}\\s+partial .*cancelled.*checkpoint at step \\d+`), mid.all);
    const step = checkpointStep(store, slow);
    await waitFor(() => existsSync(join(store, other, 'result.json')), 60_000, 'the other run to finish');
    const resumed = await run(['run', file, '--store', store, '--executor', 'slurm']);
    assert.equal(resumed.exitCode, 0, resumed.all);
    assert.match(resumed.all, new RegExp(`skip ${other}`));
    assert.match(read(join(store, slow, 'log.txt')), new RegExp(`resumed from checkpoint at step ${step}`));
    assert.equal(count(read(join(store, slow, 'log.txt')), / start toy_fit/g), 2, 'started once, resumed once');
    assert.equal(
      count(read(join(store, other, 'log.txt')), / start toy_fit/g),
      1,
      'the finished run was not run again',
    );
    const steps = read(join(store, slow, 'metrics.jsonl'))
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { step: number }).step);
    assert.deepEqual(
      steps,
      Array.from({ length: 80 }, (_, i) => i),
      'every step once, in order',
    );
  });

  test('a run killed by its time limit resumes from its checkpoint in the next submission', async () => {
    const d = tmp();
    writeFiles(d, {
      'e.yaml':
        'name: timelimit\nmethod: {name: toy_fit, params: {steps: 1200, checkpoint_every: 25}}\nslurm: {time: "1"}\n',
    });
    const file = join(d, 'e.yaml');
    const store = join(d, 'runs');
    const [id] = await plan(file, store);
    // 1200 steps × 100 ms outlast the 1-minute limit (Slurm kills 60–90 s in).
    const first = await run(['run', file, '--store', store, '--executor', 'slurm'], { SDD_TEST_STEP_MS: '100' });
    assert.equal(first.exitCode, 1, first.all);
    assert.match(
      first.all,
      /time limit 00:01:00 reached on localhost; resumes from its checkpoint at step \d+ on the next sdd run/,
    );
    const step = checkpointStep(store, id);
    assert.ok(step > 0 && step < 1200, `checkpoint at ${step}`);
    const second = await run(['run', file, '--store', store, '--executor', 'slurm']);
    assert.equal(second.exitCode, 0, second.all);
    assert.match(read(join(store, id, 'log.txt')), new RegExp(`resumed from checkpoint at step ${step}`));
  });

  test('--requeue: a task Slurm requeues mid-way is followed, and resumes from its checkpoint in the same sdd run', async () => {
    const d = tmp();
    writeFiles(d, { 'e.yaml': 'name: requeue\nmethod: {name: toy_fit, params: {steps: 100, checkpoint_every: 10}}\n' });
    const file = join(d, 'e.yaml');
    const store = join(d, 'runs');
    const [id] = await plan(file, store);
    const p = run(['run', file, '--store', store, '--executor', 'slurm', '--requeue'], { SDD_TEST_STEP_MS: '100' });
    await until(async () => existsSync(join(store, id, 'checkpoint.json')), 60_000, 'a checkpoint');
    const task = record(store, id).task;
    assert.match(
      read(join(store, '.slurm', readdirSync(join(store, '.slurm')).find((n) => n !== 'lock')!, 'job.sh')),
      /#SBATCH --requeue/,
    );
    // As after a node failure; a requeued job waits ~2 min (BeginTime) unless told to start sooner.
    await cluster.cmd('scontrol', ['requeue', task]);
    await until(async () => (await taskState(task)) === 'PENDING', 30_000, 'the task to be pending again');
    // Not `now`: slurmd refuses a relaunch within the same second as the requeue ("Job credential
    // revoked": it compares whole-second times), which is what Slurm's own requeue delay avoids.
    await cluster.cmd('scontrol', ['update', `JobId=${task}`, 'StartTime=now+3']);
    const r = await p;
    assert.equal(r.exitCode, 0, r.all);
    assert.match(r.all, /requeued .*Slurm task \d+_0/);
    assert.match(read(join(store, id, 'log.txt')), /resumed from checkpoint at step \d+/);
    const envJson = json<{ cluster: { slurm: { restart_count: number } } }>(join(store, id, 'env.json'));
    assert.equal(envJson.cluster.slurm.restart_count, 1);
  });

  test('two concurrent sdd run --executor slurm on one experiment execute every run once', async () => {
    const d = tmp();
    writeFiles(d, { 'e.yaml': 'name: twice\nmethod: {name: toy_fit, params: {steps: 20}}\nseeds: [0, 1, 2, 3]\n' });
    const file = join(d, 'e.yaml');
    const store = join(d, 'runs');
    const args = ['run', file, '--store', store, '--executor', 'slurm'];
    const [a, b] = await Promise.all([run(args), run(args)]);
    assert.equal(a.exitCode, 0, a.all);
    assert.equal(b.exitCode, 0, b.all);
    const subs = readdirSync(join(store, '.slurm')).filter((n) => !n.startsWith('lock'));
    assert.equal(subs.length, 1, `one submission, the other invocation tracks it:\n${a.all}\n${b.all}`);
    assert.match(a.all + b.all, /track .*already (pending|running) as Slurm task/);
    for (const id of await plan(file, store)) {
      assert.equal(count(read(join(store, id, 'log.txt')), / start toy_fit/g), 1, `run ${id} executed once`);
      assert.ok(existsSync(join(store, id, 'result.json')));
    }
  });

  test('--detach submits and returns; sdd status follows the array to the end', async () => {
    const d = tmp();
    // One at a time, paced to ~9 s each: status sees them queued and running before they finish.
    writeFiles(d, {
      'e.yaml':
        'name: detached\nmethod: {name: toy_fit, params: {steps: 30}}\nseeds: [0, 1, 2]\nslurm: {max_parallel: 1}\n',
    });
    const file = join(d, 'e.yaml');
    const store = join(d, 'runs');
    const ids = await plan(file, store);
    const sub = await run(['run', file, '--store', store, '--executor', 'slurm', '--detach'], {
      SDD_TEST_STEP_MS: '300',
    });
    assert.equal(sub.exitCode, 0, sub.all);
    assert.match(sub.stdout, /3 submitted, 0 already finished; `sdd status .*e\.yaml` shows where they stand/);
    const doneAtReturn = ids.filter((id) => existsSync(join(store, id, 'result.json'))).length;
    assert.ok(doneAtReturn < 3, 'returned without waiting for the runs');
    // Follow the array with sdd status until it says every run finished (exit 0; 3 meanwhile).
    let last = sub;
    const seen = new Set<string>();
    const codes = new Set<number | undefined>();
    await until(
      async () => {
        last = await run(['status', file, '--store', store]);
        codes.add(last.exitCode);
        for (const m of last.stdout.matchAll(/ (queued|running|finished) +toy_fit/g)) seen.add(m[1]);
        return last.exitCode === 0;
      },
      120_000,
      'sdd status to report every run finished',
      // Each sdd status is a CLI start (~2–3 s of CPU): every 5 s, not 2, it still sees the runs
      // queued and running (three of ~9 s, one at a time) and costs make test half the CPU.
      5000,
    );
    assert.ok(codes.has(3), 'status exits 3 while runs are queued or running');
    assert.ok(seen.has('running') || seen.has('queued'), `status showed runs on their way (saw ${[...seen]})`);
    assert.match(last.stdout, /3 runs: 3 finished/);
    const statuses = JSON.parse((await run(['status', file, '--store', store, '--json'])).stdout) as Array<{
      state: string;
      task: string;
    }>;
    assert.deepEqual(
      statuses.map((s) => s.state),
      ['finished', 'finished', 'finished'],
    );
    assert.ok(statuses.every((s) => /^\d+_\d$/.test(s.task)));
  });

  test('Ctrl-C in an attached run cancels its tasks, waits for them to leave the queue and exits 130', async () => {
    const d = tmp();
    writeFiles(d, {
      'e.yaml': 'name: ctrlc\nmethod: {name: toy_fit, params: {steps: 400, checkpoint_every: 10}}\nseeds: [0, 1]\n',
    });
    const file = join(d, 'e.yaml');
    const store = join(d, 'runs');
    const ids = await plan(file, store);
    const p = execa(process.execPath, [BIN, 'run', file, '--store', store, '--executor', 'slurm'], {
      env: { ...env(), SDD_TEST_STEP_MS: '100', SDD_REPORT: '0' },
      reject: false,
      all: true,
    });
    await waitFor(() => ids.some((id) => existsSync(join(store, id, 'checkpoint.json'))), 60_000, 'a checkpoint');
    p.kill('SIGINT');
    const r = await p;
    assert.equal(r.exitCode, 130, String(r.all));
    assert.match(String(r.all), /cancelling 2 Slurm tasks \(scancel\)/);
    const job = record(store, ids[0]).job;
    const q = await cluster.cmd('squeue', ['-h', '-j', job, '-t', 'PENDING,RUNNING,COMPLETING', '-o', '%i']);
    assert.equal(q.trim(), '', 'no task of the array left in the queue');
    const st = await run(['status', file, '--store', store]);
    assert.match(st.stdout, /partial/, st.all);
  });
});
