/**
 * Every subcommand given missing, garbage and hostile arguments (bad paths, folders for files,
 * wrong file types, bad refs, bad --set, corrupt or mismatched weights) fails the same way: one
 * line `sdd: …` naming the offending value, exit code 2, no stack trace, nothing written. Each
 * case fails before any training or run starts (loading a model to check a file is allowed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../src/util/env.js';
import { parseSafetensors, serializeSafetensors, f32 } from '../src/util/safetensors.js';
import { sdd, tmp } from './helpers.js';

const dir = tmp('sdd-hostile-');
const at = (name: string) => join(dir, name);
const zooFile = (model: string) => join(PROJECT_ROOT, 'datasets', 'toyfaces', 'zoo', model, 'weights.safetensors');
const REG = join(PROJECT_ROOT, 'experiments', 'regression.yaml');

// Fixtures: an empty folder, a text file, a PNG under other names, corrupt and mismatched weights.
mkdirSync(at('empty'));
writeFileSync(at('notes.txt'), 'not a store\n');
const png = join(PROJECT_ROOT, 'docs', 'zoo-grid.png');
for (const as of ['img.png', 'img.yaml', 'img.npz', 'img.safetensors']) copyFileSync(png, at(as));
mkdirSync(at('badimgs'));
writeFileSync(at('badimgs/a.png'), 'not a png');
writeFileSync(at('badimgs/b.png'), 'not a png either');
const vae = readFileSync(zooFile('vae'));
writeFileSync(at('trunc.safetensors'), vae.subarray(0, 1000));
const huge = Buffer.alloc(16);
huge.writeBigUInt64LE(1n << 40n);
writeFileSync(at('huge.safetensors'), huge);
writeFileSync(at('nokeys.safetensors'), serializeSafetensors(new Map([['foo', f32([2], new Float32Array([1, 2]))]])));
// The VAE's own tensors with one bias a different length: a shape mismatch, named.
const vaeTensors = new Map(parseSafetensors(vae).tensors);
vaeTensors.set('dec.out.bias', f32([4], new Float32Array(4)));
writeFileSync(at('badshape.safetensors'), serializeSafetensors(vaeTensors));
const missing = '/nonexistent/sdd-hostile/x';

interface Case {
  args: string[];
  /** Text stderr must contain (the offending path, ref, key or flag). */
  names: string | RegExp;
}

const CASES: Case[] = [
  // The command line itself.
  { args: ['bogus'], names: 'bogus' },
  // run / plan / validate / schema: experiment files and overrides.
  { args: ['run', `${missing}.yaml`], names: 'sdd-hostile/x.yaml' },
  { args: ['plan', at('empty')], names: at('empty') },
  { args: ['validate', at('img.yaml')], names: 'img.yaml' },
  { args: ['validate', REG, '--set', 'a.b'], names: "'a.b'" },
  { args: ['plan', REG, '--set', '=1'], names: "'=1'" },
  { args: ['run', REG, '--set', 'method.params.lr=abc'], names: 'method.params.lr' },
  { args: ['run', REG, '--profile', 'nope'], names: 'nope' },
  // A --set the sweep would override names the sweep key and the --set.
  {
    args: ['run', 'experiments/toy_sweep.yaml', '--profile', 'quick', '--set', 'method.params.lr=0.05'],
    names: /toy_sweep\.yaml: sweep\.method\.params\.lr: .*--set method\.params\.lr=0\.05 would not take effect/,
  },
  { args: ['run', REG, '--jobs', '0'], names: '--jobs' },
  { args: ['run', REG, '--executor', 'pbs'], names: 'pbs' },
  { args: ['run', REG, '--executor', 'slurm', '--mem', 'lots'], names: '--mem' },
  { args: ['status', `${missing}.yaml`], names: 'sdd-hostile/x.yaml' },
  { args: ['run', REG, '--dry-run', '--store', at('notes.txt')], names: at('notes.txt') },
  { args: ['schema', 'extra'], names: 'extra' },
  // The run store.
  { args: ['ls', '--store', missing], names: missing },
  { args: ['show', 'nope-id', '--store', at('empty')], names: 'nope-id' },
  { args: ['rm', 'nope-id', '--store', at('empty')], names: 'nope-id' },
  { args: ['gc', '--store', at('img.png')], names: at('img.png') },
  { args: ['doctor', '--backend', 'bogus'], names: 'bogus' },
  { args: ['__run-one', at('empty')], names: at('empty') },
  // The zoo and the world.
  { args: ['zoo', 'bogus'], names: 'bogus' },
  { args: ['zoo', 'verify', 'nomodel'], names: 'nomodel' },
  { args: ['zoo', 'train', 'vae', '--steps', 'abc'], names: '--steps' },
  { args: ['zoo', 'grid', '--out', at('empty')], names: at('empty') },
  { args: ['world', 'grid'], names: '--out' },
  { args: ['world', 'grid', '--out', `${missing}.png`], names: `${missing}.png` },
  { args: ['world', 'manifest', '--n', 'abc'], names: '--n' },
  // FID inputs: missing, empty, wrong types, undecodable images, bad outputs.
  { args: ['fid', at('empty'), at('empty')], names: at('empty') },
  { args: ['fid', at('img.png'), at('img.png')], names: at('img.png') },
  { args: ['fid', at('img.npz'), at('img.npz')], names: at('img.npz') },
  { args: ['fid', at('badimgs'), at('badimgs')], names: 'a.png' },
  { args: ['fid', at('badimgs'), at('badimgs'), '--features', 'bogus'], names: 'bogus' },
  { args: ['fid', at('badimgs'), at('badimgs'), '--features', 'inception'], names: '--weights' },
  {
    args: ['fid', at('badimgs'), at('badimgs'), '--features', 'inception', '--weights', at('img.png')],
    names: at('img.png'),
  },
  { args: ['checkpoints', 'bogus'], names: 'bogus' },
  { args: ['checkpoints', 'list', '--world', 'nope'], names: 'nope' },
  { args: ['checkpoints', 'verify', at('empty')], names: at('empty') },
  { args: ['fid', '--save-stats', at('badimgs'), at('empty')], names: at('empty') },
  // Reports and scans.
  { args: ['report', REG, '--out', at('notes.txt')], names: at('notes.txt') },
  { args: ['hqs', at('empty')], names: at('empty') },
  // regress: refs, weights files that are missing, corrupt, of the wrong model or shape.
  { args: ['regress', `${missing}.yaml`, '--candidate', 'set:seed=1'], names: 'sdd-hostile/x.yaml' },
  { args: ['regress', REG, '--candidate', 'zoo:/nope'], names: "zoo folder '/nope'" },
  { args: ['regress', REG, '--candidate', `zoo:${at('empty')}`], names: at('empty') },
  { args: ['regress', REG, '--candidate', 'weights:vae=/nope'], names: '/nope' },
  { args: ['regress', REG, '--candidate', `weights:nomodel=${at('nokeys.safetensors')}`], names: 'nomodel' },
  { args: ['regress', REG, '--candidate', 'bogus:x'], names: 'bogus:x' },
  { args: ['regress', REG, '--candidate', 'set:a.b'], names: "'a.b'" },
  {
    args: ['regress', REG, '--candidate', `weights:vae=${at('trunc.safetensors')}`],
    names: /trunc\.safetensors: .*truncated/,
  },
  {
    args: ['regress', REG, '--candidate', `weights:vae=${at('huge.safetensors')}`],
    names: /huge\.safetensors: header length 1099511627776 exceeds/,
  },
  { args: ['regress', REG, '--candidate', `weights:vae=${at('img.safetensors')}`], names: 'img.safetensors' },
  { args: ['regress', REG, '--candidate', `weights:vae=${at('empty')}`], names: at('empty') },
  {
    args: ['regress', REG, '--candidate', `weights:vae=${at('nokeys.safetensors')}`],
    names: /nokeys\.safetensors: does not fit the model .*missing 68 \(enc\.in\.weight, .*unexpected 1 \(foo\)/,
  },
  {
    args: ['regress', REG, '--candidate', `weights:vae=${zooFile('ldm')}`],
    names: /ldm\/weights\.safetensors: does not fit the model .*missing .*unexpected /,
  },
  {
    args: ['regress', REG, '--candidate', `weights:vae=${at('badshape.safetensors')}`],
    names: /badshape\.safetensors: .*wrong shape 1 \(dec\.out\.bias is \[4\], the model expects \[3\]\)/,
  },
];

const STACK = /\n\s+at .*\(|^\s+at /m;

test(
  'every subcommand refuses hostile input with one line naming it and exit 2',
  { concurrency: 2, timeout: 300_000 },
  async (t) => {
    // Runs and reports would land here; none may be written.
    const env = { SDD_RUNS: at('runs'), SDD_REPORTS: at('reports'), SDD_CACHE: at('cache') };
    const t0 = performance.now();
    await Promise.all(
      CASES.map((c) =>
        t.test(c.args.join(' ').replaceAll(dir, '$TMP'), async () => {
          const r = await sdd(c.args, { env, cwd: PROJECT_ROOT });
          const why = `sdd ${c.args.join(' ')}\n${r.all}`;
          assert.equal(r.exitCode, 2, why);
          assert.doesNotMatch(r.all, STACK, why);
          const lines = r.stderr.trim().split('\n');
          assert.equal(lines.length, 1, `one line: ${why}`);
          assert.match(lines[0], /^sdd: /, why);
          assert.doesNotMatch(lines[0], /\b(Type|Range|Reference|Syntax|Safetensors|Params)?Error: /, why);
          if (typeof c.names === 'string') assert.ok(lines[0].includes(c.names), `names ${c.names}: ${why}`);
          else assert.match(lines[0], c.names, why);
        }),
      ),
    );
    t.diagnostic(`${CASES.length} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    assert.ok(
      !existsSync(at('runs')) || readdirSync(at('runs')).length === 0,
      `nothing written to the store: ${existsSync(at('runs')) ? readdirSync(at('runs')) : ''}`,
    );
    assert.ok(!existsSync(at('reports')), 'no report written');
  },
);
