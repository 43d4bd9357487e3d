/**
 * What the CLI answers a user (#30): --version, a missing positional named in one line,
 * `checkpoints list` exits 0 whatever it finds while `verify` fails when something is missing,
 * and the run store's views (status, ls, show) know the profile and --set overrides of each run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../src/util/env.js';
import { sdd, tmp } from './helpers.js';

test('--version prints package.json\'s version', async () => {
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
