/**
 * What the CLI answers a user (#30, #31): --version, a missing positional named in one line,
 * `checkpoints list` exits 0 whatever it finds while `verify` fails when something is missing,
 * the run store's views (status, ls, show) know the profile and --set overrides of each run,
 * `sdd run` counts runs with an ETA, and a run that fails on a broken checkpoint exits 2 with its
 * whole reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../src/util/env.js';
import { parseSafetensors, serializeSafetensors } from '../src/util/safetensors.js';
import { countLine, withRunCount } from '../src/cli/run_progress.js';
import type { ProgressReporter } from '../src/util/progress.js';
import { sdd, tmp } from './helpers.js';

test("--version prints package.json's version", async () => {
  const { version } = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf-8')) as { version: string };
  const r = await sdd(['--version']);
  assert.equal(r.exitCode, 0, r.all);
  assert.equal(r.stdout.trim(), version);
});

test('a missing positional is one line naming the command and what to give, exit 2', { concurrency: 2 }, async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['status', /^sdd: status: name an experiment file \(e\.g\. experiments\/toy_sweep\.yaml/],
    ['run', /^sdd: run: name an experiment file/],
    ['validate', /^sdd: validate: name the experiment files to check/],
    ['show', /^sdd: show: name a run: its id or a unique prefix of it \(`sdd ls` lists them\)/],
    ['fid', /^sdd: fid: name two image folders or \.npz files/],
  ];
  await Promise.all(
    cases.map(([cmd, line]) =>
      t.test(cmd, async () => {
        const r = await sdd([cmd]);
        assert.equal(r.exitCode, 2, r.all);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(r.stderr.trim(), line);
        assert.doesNotMatch(r.stderr, /non-option arguments/);
      }),
    ),
  );
});

test('checkpoints: list exits 0 when it lists (files missing or not); verify exits 1 when one is missing; bad input 2', async () => {
  const env = { SDD_CHECKPOINTS: join(tmp(), 'none') };
  const list = await sdd(['checkpoints', 'list', '--world', 'real'], { env });
  assert.equal(list.exitCode, 0, list.all);
  assert.match(list.stdout, /sd\s+missing/);
  const verify = await sdd(['checkpoints', 'verify', '--world', 'real', '--backend', 'cpu'], { env });
  assert.equal(verify.exitCode, 1, verify.all);
  assert.match(verify.stdout, /sd\s+missing/);
  const bad = await sdd(['checkpoints', 'verify', '--world', 'nope'], { env });
  assert.equal(bad.exitCode, 2, bad.all);
});

test('status hints at runs finished under another profile; ls shows profile and --set; show is sectioned', async () => {
  const store = join(tmp(), 'store');
  const toy = 'experiments/toy_sweep.yaml';
  const one = ['--set', 'seeds=[0]', '--set', 'sweep.method.params.lr=[0.01]'];
  const run = await sdd(['run', toy, '--profile', 'quick', ...one, '--store', store], { cwd: PROJECT_ROOT });
  assert.equal(run.exitCode, 0, run.all);
  assert.match(run.stderr, /runs 1\/1 done, \d+s elapsed, done/, 'the overall count line');

  const status = await sdd(['status', toy, '--store', store], { cwd: PROJECT_ROOT });
  assert.equal(status.exitCode, 3, status.all);
  assert.match(status.stdout, /6 runs: 6 not started/);
  assert.match(
    status.stdout,
    /hint: experiments\/toy_sweep\.yaml: 1 finished under --profile quick \(`sdd status experiments\/toy_sweep\.yaml --profile quick` shows them\)/,
  );
  const quick = await sdd(['status', toy, '--profile', 'quick', ...one, '--store', store], { cwd: PROJECT_ROOT });
  assert.equal(quick.exitCode, 0, quick.all);
  assert.doesNotMatch(quick.stdout, /hint:/, 'no hint when every run asked about is finished');

  const ls = await sdd(['ls', '--store', store]);
  const [header, , row] = ls.stdout.split('\n');
  assert.match(header, /^id\s+experiment\s+run\s+status\s+profile\s+--set\s+modified\s+result/);
  assert.match(
    row,
    /toy-sweep\s+toy_fit lr=0\.01 seed=0\s+finished\s+quick\s+seeds=\[0\] sweep\.method\.params\.lr=\[0\.01\]/,
  );
  const id = row.split(' ')[0];

  const show = await sdd(['show', id.slice(0, 6), '--store', store]);
  assert.equal(show.exitCode, 0, show.all);
  for (const section of [/^run [0-9a-f]{12}$/m, /^method toy_fit v\d+$/m, /^provenance$/m, /^result$/m])
    assert.match(show.stdout, section);
  assert.match(show.stdout, /^ {2}profile\s+quick$/m);
  assert.match(show.stdout, /^ {2}lr: 0\.01$/m, 'parameters one a line, indented');
  assert.match(show.stdout, /^ {2}final_loss\s+\d/m);
  assert.ok(
    show.stdout.split('\n').every((l) => l.length <= 160),
    'no 2000-character line',
  );
  const json = JSON.parse((await sdd(['show', id, '--json', '--store', store])).stdout) as {
    origin: { profile: string };
  };
  assert.equal(json.origin.profile, 'quick');
});

test('the count line: runs done of those to run, failures, ETA from the mean time per run', () => {
  assert.equal(countLine({ done: 0, failed: 0, total: 4, elapsedS: 3 }), 'runs 0/4 done, 3s elapsed, ETA ?');
  assert.equal(
    countLine({ done: 1, failed: 1, total: 4, elapsedS: 60 }),
    'runs 1/4 done (1 failed), 1m00s elapsed, ETA 3m00s',
  );
  let t = 0;
  const lines: string[] = [];
  const inner: ProgressReporter = {
    start() {},
    update() {},
    stop() {},
    finish: (_k, s) => lines.push(s),
    log: (l) => lines.push(l),
  };
  const p = withRunCount(inner, 2, () => t);
  t = 10_000;
  p.finish('a', 'busy        a'); // another process has it: not ended
  p.finish('a', 'ok          a 10s');
  t = 30_000;
  p.finish('b', 'FAILED (exit 1) b 20s');
  assert.deepEqual(lines, [
    'busy        a',
    'ok          a 10s',
    'runs 1/2 done, 10s elapsed, ETA 10s',
    'FAILED (exit 1) b 20s',
    'runs 2/2 done (1 failed), 30s elapsed, done',
  ]);
});

test('sdd run: a run failing on a broken checkpoint exits 2 (bad input) and prints its whole reason', async () => {
  const dir = join(tmp(), 'a-folder-name-long-enough-that-a-cut-reason-would-lose-the-tensor', 'and-one-more-level');
  mkdirSync(dir, { recursive: true });
  const fix = join(PROJECT_ROOT, 'test', 'fixtures');
  cpSync(join(fix, 'sd_tiny'), join(dir, 'sd'), { recursive: true });
  // The UNet without one tensor: the strict loader names it.
  const unet = join(dir, 'sd', 'unet', 'diffusion_pytorch_model.safetensors');
  const tensors = new Map(parseSafetensors(readFileSync(unet)).tensors);
  const gone = [...tensors.keys()].sort().at(-1)!;
  tensors.delete(gone);
  writeFileSync(unet, serializeSafetensors(tensors));
  writeFileSync(join(dir, 'inception.safetensors'), ''); // present; the run stops at the UNet first
  const file = join(dir, 'e.yaml');
  const ckpt = `{ sd: sd, clip: ${join(fix, 'clip_tiny')}, inception: inception.safetensors, images: ${join(fix, 'inception', 'a')} }`;
  const real = join(PROJECT_ROOT, 'experiments', 'real', 'sdedit.yaml');
  writeFileSync(
    file,
    `include: [${real}]\nname: bad-ckpt\ncheckpoints: ${ckpt}\nsweep: { method.params.prompt: [smile] }\n`,
  );
  const r = await sdd(['run', file, '--store', join(dir, 'store'), '--backend', 'wasm'], {
    env: { SDD_CHECKPOINTS: '' },
  });
  assert.equal(r.exitCode, 2, r.all);
  assert.match(r.stdout, /failed\s+\S+\s+see below/);
  const reason = r.stdout.split('\n').find((l) => l.includes(gone));
  assert.ok(reason, `the tensor's name is printed: ${r.stdout}`);
  assert.ok(reason.includes(unet), 'with the whole path');
  assert.ok(reason.length > 160, 'longer than the old cut');
});
