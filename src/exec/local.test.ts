/**
 * The executor end to end, through the real CLI and real child processes:
 * SIGKILL half way then resume (no lost or duplicated run), two concurrent `sdd run` on one file,
 * failures recorded without stopping the sweep, NaN stops with a reason, SIGINT leaves a
 * resumable store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, sdd, tmp, waitFor, writeFiles, sleep } from '../../test/helpers.js';
import { tryLock, unlock } from '../runs/lock.js';
import { readCard } from '../../datasets/toyfaces/zoo/store.js';

const SWEEP = `
name: kill-test
method:
  name: toy_fit
  params: {steps: 300, hidden: 16, checkpoint_every: 20}
seeds: [0, 1]
sweep:
  method.params.lr: [0.003, 0.01, 0.03]
`;

function runDirs(store: string): string[] {
  return existsSync(store)
    ? readdirSync(store)
        .filter((f) => !f.startsWith('.'))
        .map((f) => join(store, f))
    : [];
}
const finished = (store: string) => runDirs(store).filter((d) => existsSync(join(d, 'result.json')));
const count = (text: string, re: RegExp) => (text.match(re) ?? []).length;
const log = (d: string) => (existsSync(join(d, 'log.txt')) ? readFileSync(join(d, 'log.txt'), 'utf-8') : '');

function metricSteps(d: string): number[] {
  return readFileSync(join(d, 'metrics.jsonl'), 'utf-8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { step: number }).step);
}

/** No run of the store is locked by a live process (killed runs' children have exited). */
async function settled(store: string): Promise<void> {
  await waitFor(
    () =>
      runDirs(store).every((d) => {
        try {
          const o = JSON.parse(readFileSync(join(d, 'lock', 'owner.json'), 'utf-8')) as { pid: number };
          process.kill(o.pid, 0);
          return false;
        } catch {
          return true;
        }
      }),
    20_000,
    'children of the killed run to exit',
  );
}

test('SIGKILL half way through a 6-run sweep, then a second sdd run finishes it: none lost, none duplicated', async () => {
  const d = tmp();
  writeFiles(d, { 'e.yaml': SWEEP });
  const store = join(d, 'store');
  const first = execa(process.execPath, [BIN, 'run', join(d, 'e.yaml'), '--store', store, '-j', '2'], {
    reject: false,
  });
  // Kill once some runs are finished and others are mid-way with a checkpoint.
  await waitFor(
    () =>
      finished(store).length >= 2 &&
      runDirs(store).some((r) => !existsSync(join(r, 'result.json')) && existsSync(join(r, 'checkpoint.json'))),
    120_000,
    'two finished runs and one checkpointed partial run',
  );
  first.kill('SIGKILL');
  await first;
  await settled(store);
  const before = finished(store).length;
  assert.ok(before >= 2 && before < 6, `finished before resume: ${before}`);

  const second = await sdd(['run', join(d, 'e.yaml'), '--store', store, '-j', '2']);
  assert.equal(second.exitCode, 0, second.all);
  assert.match(String(second.all), new RegExp(`${before} already finished`));
  assert.equal(count(String(second.all), /^\[.*\] skip /gm), before, 'finished runs are skipped, not redone');
  const dirs = runDirs(store);
  assert.equal(dirs.length, 6);
  assert.equal(finished(store).length, 6);
  let resumed = 0;
  for (const r of dirs) {
    assert.equal(count(log(r), / finished$/gm), 1, `run ${r} finished exactly once:\n${log(r)}`);
    resumed += count(log(r), /resumed from checkpoint/g);
    // Metrics after a resume hold each step once, in order.
    const steps = metricSteps(r);
    assert.deepEqual(
      steps,
      Array.from({ length: 300 }, (_, i) => i),
      `metrics of ${r}`,
    );
    assert.equal(existsSync(join(r, 'checkpoint.json')), false, 'checkpoint removed once finished');
    assert.equal(existsSync(join(r, 'lock')), false, 'no lock left');
  }
  assert.ok(resumed >= 1, 'at least one run resumed from its checkpoint');
  const ls = await sdd(['ls', '--json', '--store', store]);
  const listed = JSON.parse(String(ls.stdout)) as Array<{ status: string }>;
  assert.deepEqual(
    listed.map((r) => r.status),
    Array(6).fill('finished'),
  );
});

test('two concurrent sdd run on the same file execute each run exactly once', async () => {
  const d = tmp();
  writeFiles(d, { 'e.yaml': SWEEP.replace('steps: 300', 'steps: 60') });
  const store = join(d, 'store');
  const args = ['run', join(d, 'e.yaml'), '--store', store, '-j', '2'];
  const [a, b] = await Promise.all([sdd(args), sdd(args)]);
  assert.equal(a.exitCode, 0, a.all);
  assert.equal(b.exitCode, 0, b.all);
  assert.equal(finished(store).length, 6);
  for (const r of runDirs(store)) {
    assert.equal(count(log(r), / start toy_fit/g), 1, `run ${r} started once:\n${log(r)}`);
    assert.equal(count(log(r), / finished$/gm), 1);
  }
});

test('a failing run is recorded and the sweep goes on; NaN stops a run with a reason; exit code 1', async () => {
  const d = tmp();
  writeFiles(d, {
    'e.yaml': `
name: failures
method: {name: toy_fit, params: {steps: 30}}
sweep:
  method.params.lr: [0.01, 1.0e+30]
  method.params.fail_at_step: [10, 1000]
`,
  });
  const store = join(d, 'store');
  const r = await sdd(['run', join(d, 'e.yaml'), '--store', store]);
  assert.equal(r.exitCode, 1, r.all);
  assert.match(String(r.stdout), /1 ok, 3 failed/);
  const ls = JSON.parse(String((await sdd(['ls', '--json', '--store', store])).stdout)) as Array<{
    status: string;
    error: { kind: string; message: string } | null;
    config: { method: { params: { lr: number; fail_at_step: number } } };
  }>;
  for (const run of ls) {
    const { lr, fail_at_step } = run.config.method.params;
    if (lr > 1) {
      assert.equal(run.status, 'failed');
      assert.equal(run.error?.kind, 'nonfinite');
      assert.match(run.error!.message, /loss is (NaN|Infinity)/);
    } else if (fail_at_step === 10) {
      assert.equal(run.status, 'failed');
      assert.match(run.error!.message, /fault injected at step 10/);
    } else assert.equal(run.status, 'finished');
  }
});

test('SIGINT stops children cleanly and leaves a resumable store', async () => {
  const d = tmp();
  writeFiles(d, { 'e.yaml': SWEEP.replace('seeds: [0, 1]', 'seeds: [0]') });
  const store = join(d, 'store');
  const p = execa(process.execPath, [BIN, 'run', join(d, 'e.yaml'), '--store', store], { reject: false, all: true });
  await waitFor(() => runDirs(store).some((r) => existsSync(join(r, 'checkpoint.json'))), 60_000, 'a checkpoint');
  p.kill('SIGINT');
  const res = await p;
  assert.equal(res.exitCode, 130, res.all);
  assert.match(String(res.all), /interrupted/);
  await sleep(200);
  for (const r of runDirs(store)) {
    assert.equal(existsSync(join(r, 'lock')), false, 'lock released');
    assert.equal(existsSync(join(r, 'error.json')), false, 'an interruption is not a failure');
  }
  const again = await sdd(['run', join(d, 'e.yaml'), '--store', store]);
  assert.equal(again.exitCode, 0, again.all);
  assert.equal(finished(store).length, 3);
});

test('same config, same numbers: a run is deterministic given its recorded seed (seed 0 too)', async () => {
  const d = tmp();
  // Seed 0 is the one tfjs would take for "unseeded" (rng.ts: tfSeed).
  writeFiles(d, { 'e.yaml': 'name: det\nmethod: {name: toy_fit, params: {steps: 25}}\nseeds: [0]\n' });
  const results = [];
  for (const store of ['s1', 's2']) {
    const r = await sdd(['run', join(d, 'e.yaml'), '--store', join(d, store)]);
    assert.equal(r.exitCode, 0, r.all);
    const [dir] = runDirs(join(d, store));
    results.push(JSON.parse(readFileSync(join(dir, 'result.json'), 'utf-8')).metrics);
    const env = JSON.parse(readFileSync(join(dir, 'env.json'), 'utf-8'));
    assert.equal(env.seed, 0);
    assert.ok(
      env.git &&
        env.packages['@tensorflow/tfjs-core'] &&
        env.backend.choice &&
        env.machine.cpu &&
        env.started_at &&
        env.finished_at,
    );
  }
  assert.deepEqual(results[0], results[1]);
});

test('store commands: show, rm (refuses running runs), gc removes partial and failed runs', async () => {
  const d = tmp();
  writeFiles(d, {
    'e.yaml': 'name: st\nmethod: {name: toy_fit, params: {steps: 10}}\nsweep: {method.params.fail_at_step: [5, 100]}\n',
  });
  const store = join(d, 'store');
  await sdd(['run', join(d, 'e.yaml'), '--store', store]);
  const runs = JSON.parse((await sdd(['ls', '--json', '--store', store])).stdout) as Array<{
    id: string;
    status: string;
  }>;
  const ok = runs.find((r) => r.status === 'finished')!;
  const bad = runs.find((r) => r.status === 'failed')!;
  const show = await sdd(['show', ok.id.slice(0, 6), '--store', store]);
  assert.equal(show.exitCode, 0, show.all);
  assert.match(show.stdout, /finished/);
  assert.match(show.stdout, /final_loss/);
  assert.equal((await sdd(['show', 'zzzz', '--store', store])).exitCode, 2);
  const gc = await sdd(['gc', '--store', store]);
  assert.match(gc.stdout, new RegExp(`removed ${bad.id} \\(failed\\)`));
  assert.equal(existsSync(join(store, bad.id)), false);
  assert.equal(existsSync(join(store, ok.id)), true);
  // While a live process holds its lock the run counts as running and rm refuses it.
  assert.equal(tryLock(join(store, ok.id)), true);
  const refused = await sdd(['rm', ok.id, '--store', store]);
  assert.equal(refused.exitCode, 2, refused.all);
  assert.match(refused.stderr, /is running/);
  unlock(join(store, ok.id));
  const rm = await sdd(['rm', ok.id, '--store', store]);
  assert.equal(rm.exitCode, 0, rm.all);
  assert.equal(existsSync(join(store, ok.id)), false);
});

test('a finished run made with other model weights is redone, the old one kept aside; matching weights are skipped', async () => {
  const d = tmp();
  const store = join(d, 'runs');
  writeFiles(d, {
    'e.yaml': 'name: stale-test\nmethod:\n  name: toy_fit\n  params: {steps: 20, hidden: 8}\nseeds: [0, 1]\n',
  });
  assert.equal((await sdd(['run', join(d, 'e.yaml'), '--store', store, '--no-report'])).exitCode, 0);
  const [a, b] = finished(store).sort();
  // Record in a's result the current zoo's hashes except one, and in b's exactly the current ones.
  const current = Object.fromEntries(['vae', 'ldm'].map((m) => [m, readCard(m).weights.sha256]));
  // Where an editing method's run records them: result.metrics.models (src/methods/editing.ts).
  const edit = (dir: string, models: Record<string, string>) => {
    const r = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf-8')) as { metrics: Record<string, unknown> };
    writeFileSync(join(dir, 'result.json'), JSON.stringify({ ...r, metrics: { ...r.metrics, models } }));
  };
  const recorded = (path: string) =>
    (JSON.parse(readFileSync(path, 'utf-8')) as { metrics: { models?: Record<string, string> } }).metrics.models;
  edit(a, { ...current, vae: 'f'.repeat(64) });
  edit(b, current);

  const plan = await sdd(['plan', join(d, 'e.yaml'), '--store', store]);
  assert.match(plan.stdout, /stale \(vae\)/);
  const again = await sdd(['run', join(d, 'e.yaml'), '--store', store, '--no-report']);
  assert.equal(again.exitCode, 0, again.all);
  assert.match(again.all, /1 to redo \(model weights changed since they ran\)/);
  assert.match(again.all, /rerun .*model weights changed since it ran \(vae\)/);
  assert.match(again.all, /skip .*\(finished\)/);
  // The redone run has a fresh result (toy_fit records no models); the old one is kept whole.
  assert.equal(recorded(join(a, 'result.json')), undefined);
  assert.deepEqual(recorded(join(b, 'result.json')), current);
  const aside = readdirSync(join(store, '.superseded'));
  assert.equal(aside.length, 1);
  assert.ok(aside[0].startsWith(a.split('/').pop()!));
  assert.equal(recorded(join(store, '.superseded', aside[0], 'result.json'))?.vae, 'f'.repeat(64));
  assert.ok(!existsSync(join(store, '.superseded', aside[0], 'lock')), 'no lock left on the kept run');
  const ls = JSON.parse((await sdd(['ls', '--json', '--store', store])).stdout) as unknown[];
  assert.equal(ls.length, 2, 'ls shows the two current runs, not the superseded one');
});
