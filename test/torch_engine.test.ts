/**
 * The engine key and the torch engine's process life (#29): run identity (`engine: tfjs` keeps
 * every id, torch and its precision are part of it, `auto` resolves where runs are planned),
 * one-line refusals, and a `kill -9` of `sdd run` while its torch worker runs: the worker is gone
 * within seconds, nothing more is written into the run, and the next `sdd run` finishes it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sdd, sleep, tmp, waitFor, writeFiles } from './helpers.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { registerBuiltinMethods } from '../src/methods/index.js';
import { loadExperiment } from '../src/experiments/load.js';
import { expandExperiment } from '../src/experiments/expand.js';
import { requirePython } from '../src/util/python.js';
import { probeTorch } from '../src/methods/engines/torch_probe.js';

registerBuiltinMethods();

const plan = (file: string, sets: string[] = []) => expandExperiment(loadExperiment(file, { sets }).experiment, file);
const SDEDIT = join(PROJECT_ROOT, 'experiments/base/sdedit.yaml');

test('engine: tfjs (the default) keeps every run id; torch and its precision are part of the id', () => {
  const [plain] = plan(SDEDIT);
  const [tfjs] = plan(SDEDIT, ['engine=tfjs']);
  assert.equal(tfjs.id, plain.id);
  assert.ok(!('engine' in plain.config), 'no engine key in a tfjs config: stored runs keep their ids');
  const [torch] = plan(SDEDIT, ['engine=torch']);
  const [tf32] = plan(SDEDIT, ['engine=torch', 'precision=tf32']);
  assert.deepEqual(torch.config.engine, { name: 'torch', precision: 'fp32' });
  assert.equal(new Set([plain.id, torch.id, tf32.id]).size, 3);
});

test('engine: auto is resolved at planning: torch when it sees CUDA or cluster GPUs are asked for, else tfjs', () => {
  requirePython(['torch', 'numpy']);
  const [auto] = plan(SDEDIT, ['engine=auto']);
  const [plain] = plan(SDEDIT);
  const [torch] = plan(SDEDIT, ['engine=torch']);
  // What this machine's torch says decides (CI: no CUDA device, so tfjs, the same run as plain).
  assert.equal(auto.id, probeTorch().gpu ? torch.id : plain.id);
  const [cluster] = plan(SDEDIT, ['engine=auto', 'executor=slurm', 'slurm.gpus=1']);
  assert.equal(cluster.id, torch.id, 'a Slurm block asking for GPUs plans torch runs');
});

test('one-line refusals: a method without a PyTorch twin on torch, a precision tfjs does not compute in', async () => {
  const dir = tmp();
  writeFiles(dir, { 'e.yaml': 'name: e\nmethod: {name: toy_fit}\n' });
  let r = await sdd(['plan', join(dir, 'e.yaml'), '--engine', 'torch']);
  assert.equal(r.exitCode, 2, r.all);
  assert.match(r.stderr, /engine: torch: method 'toy_fit' has no torch implementation \(engines: tfjs\)/);
  r = await sdd(['plan', SDEDIT, '--set', 'precision=fp16']);
  assert.equal(r.exitCode, 2, r.all);
  assert.match(r.stderr, /precision: fp16: engine tfjs computes in fp32 only/);
});

/** Processes whose command line runs sdd_torch and whose environment names `harness` as SDD_PARENT_PID. */
function enginePids(harness: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf-8');
        const env = readFileSync(`/proc/${d}/environ`, 'utf-8').split('\0');
        return cmd.includes('sdd_torch') && env.includes(`SDD_PARENT_PID=${harness}`);
      } catch {
        return false;
      }
    })
    .map(Number);
}

test('kill -9 of sdd run: its torch worker goes within seconds, writes nothing more, and the run resumes', async () => {
  requirePython(['torch', 'numpy']);
  const dir = tmp();
  const store = join(dir, 'runs');
  // Four batches of one image: progress after each, so the worker is caught in the middle.
  writeFiles(dir, {
    'k.yaml':
      'name: k\nmethod: {name: sdedit, params: {prompt: "hair_color:black->white", steps: 10, eval_images: 4, batch: 1}}\n',
  });
  const file = join(dir, 'k.yaml');
  const [run] = plan(file, ['engine=torch']);
  const out = join(store, run.id, 'contract', 'out');
  const harness = spawn(
    process.execPath,
    [join(PROJECT_ROOT, 'bin/sdd.mjs'), 'run', file, '--engine', 'torch', '--jobs', '1', '--no-report'],
    {
      env: { ...process.env, SDD_RUNS: store, SDD_REPORT: '0' },
      stdio: 'ignore',
    },
  );
  const pid = harness.pid!;
  await waitFor(() => existsSync(join(out, 'progress.json')), 120_000, 'the torch worker to report progress');
  const workers = enginePids(pid);
  assert.ok(workers.length >= 1, 'a torch worker of this sdd run is running');
  process.kill(pid, 'SIGKILL');
  const t0 = Date.now();
  await waitFor(
    () =>
      workers.every((w) => !existsSync(`/proc/${w}`) || readFileSync(`/proc/${w}/stat`, 'utf-8').split(' ')[2] === 'Z'),
    10_000,
    'the worker to exit',
  );
  const goneMs = Date.now() - t0;
  const stamp = () =>
    readdirSync(out)
      .map((f) => `${f}:${statSync(join(out, f)).mtimeMs}`)
      .sort()
      .join(',');
  const before = stamp();
  await sleep(1500);
  assert.equal(stamp(), before, 'nothing written into contract/out after the harness died');
  assert.ok(!existsSync(join(store, run.id, 'result.json')));
  // The orphaned run process (sdd __run-one) lets go of its lock too; then the run resumes here.
  const r = await sdd(['run', file, '--engine', 'torch', '--jobs', '1', '--no-report'], { env: { SDD_RUNS: store } });
  assert.equal(r.exitCode, 0, r.all);
  assert.ok(existsSync(join(store, run.id, 'result.json')));
  process.stdout.write(`# worker gone ${goneMs} ms after kill -9 of sdd run\n`);
});
