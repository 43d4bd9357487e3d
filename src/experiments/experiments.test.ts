/** Experiment files: includes and merge semantics, overrides, sweeps, ids, and bad-input errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { registerBuiltinMethods } from '../methods/index.js';
import { loadExperiment } from './load.js';
import { expandExperiment, ID_LENGTH, runId } from './expand.js';
import { canonicalJson, sha256 } from '../util/hash.js';
import { PROJECT_ROOT } from '../util/env.js';
import { deepMerge } from './merge.js';
import { experimentJsonSchema } from './schema.js';
import { UserError } from '../errors.js';
import { checkFiles } from './validate.js';
import { sdd, tmp, writeFiles } from '../../test/helpers.js';

registerBuiltinMethods();

const BASE = `
name: base
method:
  name: toy_fit
  params: {steps: 10, lr: 0.01, hidden: 8}
seeds: [0]
`;

function dirWith(files: Record<string, string>): string {
  const d = tmp();
  writeFiles(d, { 'base.yaml': BASE, ...files });
  return d;
}

function userError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof UserError, `expected a UserError, got ${(e as Error).stack}`);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    return e.message;
  }
  assert.fail('expected an error');
}

test('deepMerge: mappings merge, lists and scalars replace, null deletes', () => {
  const a = { x: { y: 1, z: [1, 2], k: 'a' }, keep: true, gone: 3 };
  const b = { x: { z: [9], k: null, n: 2 }, gone: null };
  assert.deepEqual(deepMerge(a, b), { x: { y: 1, z: [9], n: 2 }, keep: true });
});

test('include: the including file wins, nested keys merge, includes chain', () => {
  const d = dirWith({
    'mid.yaml': 'include: base.yaml\nname: mid\nmethod: {params: {lr: 0.5}}\n',
    'top.yaml': 'include: mid.yaml\nname: top\nmethod: {params: {hidden: 4}}\nseeds: [2, 1]\n',
  });
  const { experiment, sources } = loadExperiment(join(d, 'top.yaml'));
  assert.equal(experiment.name, 'top');
  assert.deepEqual(experiment.method.params, { steps: 10, lr: 0.5, hidden: 4, batch: 64, checkpoint_every: 50 });
  assert.deepEqual(experiment.seeds, [2, 1], 'lists are replaced, not concatenated');
  assert.deepEqual(
    sources.map((s) => s.split('/').pop()),
    ['base.yaml', 'mid.yaml', 'top.yaml'],
  );
});

test('extends: is another spelling of include:', () => {
  const d = dirWith({
    'e.yaml': 'extends: [base.yaml]\nname: e\n',
    'both.yaml': 'include: base.yaml\nextends: base.yaml\n',
  });
  assert.equal(loadExperiment(join(d, 'e.yaml')).experiment.method.params.steps, 10);
  assert.match(
    userError(() => loadExperiment(join(d, 'both.yaml'))),
    /both\.yaml: extends: use either/,
  );
});

test('--set and profiles override after includes; values are read as YAML', () => {
  const d = dirWith({ 'e.yaml': 'include: base.yaml\nprofiles: {quick: {method.params.steps: 3}}\n' });
  const { experiment } = loadExperiment(join(d, 'e.yaml'), {
    profile: 'quick',
    sets: ['method.params.lr=0.25', 'seeds=[4, 5]'],
  });
  assert.equal(experiment.method.params.steps, 3);
  assert.equal(experiment.method.params.lr, 0.25);
  assert.deepEqual(experiment.seeds, [4, 5]);
});

test('sweep × seeds expands to the cartesian grid with stable, distinct ids', () => {
  const d = dirWith({
    'e.yaml':
      'include: base.yaml\nseeds: [0, 1]\nsweep:\n  method.params.lr: [0.1, 0.2, 0.3]\n  method.params.hidden: [4, 8]\n',
  });
  const exp = loadExperiment(join(d, 'e.yaml')).experiment;
  const runs = expandExperiment(exp, 'e.yaml');
  assert.equal(runs.length, 12);
  assert.equal(new Set(runs.map((r) => r.id)).size, 12);
  const again = expandExperiment(loadExperiment(join(d, 'e.yaml')).experiment, 'e.yaml');
  assert.deepEqual(
    again.map((r) => r.id),
    runs.map((r) => r.id),
  );
  // Defaults are filled in, so spelling a default out does not change the id.
  const explicit = expandExperiment(
    loadExperiment(join(d, 'e.yaml'), { sets: ['method.params.batch=64'] }).experiment,
    'e.yaml',
  );
  assert.deepEqual(
    explicit.map((r) => r.id),
    runs.map((r) => r.id),
  );
  const changed = expandExperiment(
    loadExperiment(join(d, 'e.yaml'), { sets: ['method.params.batch=32'] }).experiment,
    'e.yaml',
  );
  assert.notEqual(changed[0].id, runs[0].id);
  assert.deepEqual(runs[0].config.point, { 'method.params.hidden': 4, 'method.params.lr': 0.1 });
});

test('a setting added later stays out of the id at its neutral value (finished runs keep their ids)', () => {
  const exp = loadExperiment(join(PROJECT_ROOT, 'experiments/table1/sdd.yaml')).experiment;
  const [run] = expandExperiment(exp, 'sdd.yaml');
  const params = run.config.method.params as { guidance: Record<string, unknown> };
  assert.equal(params.guidance.negative, 'empty', 'config.json still records the setting');
  const without = structuredClone(run.config);
  delete (without.method.params as { guidance: Record<string, unknown> }).guidance.negative;
  assert.equal(run.id, sha256(canonicalJson(without)).slice(0, ID_LENGTH));
  const source = expandExperiment(
    loadExperiment(join(PROJECT_ROOT, 'experiments/table1/sdd.yaml'), {
      sets: ['method.params.guidance.negative=source'],
    }).experiment,
    'sdd.yaml',
  );
  assert.notEqual(source[0].id, run.id);
  assert.equal(runId(source[0].config), source[0].id);
});

test('where: sets keys for the matching sweep points only; a when-key no run has is an error', () => {
  const d = dirWith({
    'w.yaml':
      'include: base.yaml\nsweep:\n  method.params.lr: [0.1, 0.2]\nwhere:\n  - when: { method.params.lr: 0.2 }\n    set: { method.params.hidden: 16 }\n',
    'typo.yaml':
      'include: base.yaml\nsweep:\n  method.params.lr: [0.1, 0.2]\nwhere:\n  - when: { method.params.rl: 0.2 }\n    set: { method.params.hidden: 16 }\n',
  });
  const runs = expandExperiment(loadExperiment(join(d, 'w.yaml')).experiment, 'w.yaml');
  const hidden = Object.fromEntries(
    runs.map((r) => [r.config.method.params.lr as number, r.config.method.params.hidden]),
  );
  assert.equal(hidden[0.2], 16);
  assert.notEqual(hidden[0.1], 16);
  assert.match(
    userError(() => expandExperiment(loadExperiment(join(d, 'typo.yaml')).experiment, 'typo.yaml')),
    /typo\.yaml: where\.0\.when\.method\.params\.rl: no run has this key/,
  );
});

test('bad input: one line naming the file and the key path', () => {
  const d = dirWith({
    'syntax.yaml': 'name: x\nmethod:\n  name: toy_fit\n  params: {steps: 3\n',
    'unknown.yaml': 'include: base.yaml\nmethod: {params: {stpes: 3}}\n',
    'topkey.yaml': 'include: base.yaml\nseed: [1]\n',
    'type.yaml': 'include: base.yaml\nmethod: {params: {lr: fast}}\n',
    'missing.yaml': 'include: nothere.yaml\nname: m\n',
    'cyc-a.yaml': 'include: cyc-b.yaml\nname: a\n',
    'cyc-b.yaml': 'include: cyc-a.yaml\nname: b\n',
    'tag.yaml': 'name: !!js/function "function(){ return 1 }"\nmethod: {name: toy_fit}\n',
    'method.yaml': 'include: base.yaml\nmethod: {name: toy_fitt}\n',
    'sweep.yaml': 'include: base.yaml\nsweep: {method.params.steps: [5, -1]}\n',
    'dup.yaml': 'name: a\nname: b\n',
  });
  const f = (n: string) => join(d, n);
  assert.match(
    userError(() => loadExperiment(f('syntax.yaml'))),
    /syntax\.yaml: line \d+, column \d+: /,
  );
  assert.match(
    userError(() => loadExperiment(f('unknown.yaml'))),
    /unknown\.yaml: method\.params\.stpes: unknown key \(did you mean 'steps'\?\)/,
  );
  assert.match(
    userError(() => loadExperiment(f('topkey.yaml'))),
    /topkey\.yaml: seed: unknown key \(did you mean 'seeds'\?\)/,
  );
  assert.match(
    userError(() => loadExperiment(f('type.yaml'))),
    /type\.yaml: method\.params\.lr: expected number, got string 'fast'/,
  );
  assert.match(
    userError(() => loadExperiment(f('missing.yaml'))),
    /missing\.yaml: include: file not found: .*nothere\.yaml/,
  );
  assert.match(
    userError(() => loadExperiment(f('cyc-a.yaml'))),
    /include: cycle .*cyc-a\.yaml → .*cyc-b\.yaml → .*cyc-a\.yaml/,
  );
  assert.match(
    userError(() => loadExperiment(f('tag.yaml'))),
    /tag\.yaml: line 1, column \d+: .*tag/i,
  );
  assert.match(
    userError(() => loadExperiment(f('method.yaml'))),
    /method\.name: unknown method 'toy_fitt' \(did you mean 'toy_fit'\?\)/,
  );
  const sweepExp = loadExperiment(f('sweep.yaml')).experiment;
  assert.match(
    userError(() => expandExperiment(sweepExp, 'sweep.yaml')),
    /method\.params\.steps: .*in sweep point method\.params\.steps=-1/,
  );
  assert.match(
    userError(() => loadExperiment(f('dup.yaml'))),
    /dup\.yaml: line 2, column 1: .*unique/i,
  );
  assert.match(
    userError(() => loadExperiment(f('base.yaml'), { sets: ['nokey'] })),
    /^--set: expected KEY=VALUE/,
  );
  assert.match(
    userError(() => loadExperiment(f('base.yaml'), { profile: 'quik' })),
    /profiles: no profile 'quik'/,
  );
});

test('CLI: bad input exits 2 with one line on stderr and writes nothing', async () => {
  const d = dirWith({ 'bad.yaml': 'include: base.yaml\nmethod: {params: {lr: -1}}\n' });
  const store = join(d, 'store');
  for (const cmd of ['run', 'validate', 'plan']) {
    const r = await sdd([cmd, join(d, 'bad.yaml'), '--store', store]);
    assert.equal(r.exitCode, 2, `${cmd}: ${r.all}`);
    const lines = String(r.stderr).trim().split('\n');
    assert.equal(lines.length, 1, `${cmd} stderr: ${r.stderr}`);
    assert.match(lines[0], /^sdd: .*bad\.yaml: method\.params\.lr: /);
    assert.doesNotMatch(String(r.all), /at .*\.ts:\d+/, 'no stack trace');
  }
  assert.equal(existsSync(store), false, 'nothing written');
  const ok = await sdd(['validate', join(d, 'base.yaml')]);
  assert.equal(ok.exitCode, 0, ok.all);
  const unknownFlag = await sdd(['run', join(d, 'base.yaml'), '--jbos', '2', '--store', store]);
  assert.equal(unknownFlag.exitCode, 2, unknownFlag.all);
});

test('JSON Schema export names every key and the method parameters', () => {
  const s = experimentJsonSchema() as { properties: Record<string, unknown> };
  for (const k of ['name', 'include', 'method', 'seeds', 'sweep', 'executor', 'slurm', 'profiles', 'version']) {
    assert.ok(k in s.properties, k);
  }
  assert.match(JSON.stringify(s.properties.method), /checkpoint_every/);
});

test('--set on a swept key is an error naming both; --set sweep.KEY=[…] replaces that list', () => {
  const d = dirWith({
    'e.yaml': 'include: base.yaml\nsweep:\n  method.params.lr: [0.1, 0.2]\n  method.params.mapper.x: [1]\n',
  });
  const f = join(d, 'e.yaml');
  const same = userError(() => loadExperiment(f, { sets: ['method.params.lr=0.05'] }));
  assert.match(same, /e\.yaml: sweep\.method\.params\.lr: the sweep sets this key \(\[0\.1,0\.2\]\)/);
  assert.match(
    same,
    /--set method\.params\.lr=0\.05 would not take effect.*--set 'sweep\.method\.params\.lr=\[0\.05\]'/,
  );
  // A mapping that holds a swept key, and a key inside a swept mapping, collide too.
  assert.match(
    userError(() => loadExperiment(f, { sets: ['method.params={lr: 1}'] })),
    /sweep\.method\.params\.lr: .*--set method\.params=\{lr: 1\}/,
  );
  assert.match(
    userError(() => loadExperiment(f, { sets: ['method.params.mapper.x.y=2'] })),
    /sweep\.method\.params\.mapper\.x: /,
  );
  assert.equal(
    loadExperiment(f, { sets: ['method.params.hidden=4'] }).experiment.method.params.hidden,
    4,
    'other keys are fine',
  );
  const narrow = { sets: ['sweep.method.params.lr=[0.05]', 'sweep.method.params.mapper.x=~'] };
  const narrowed = expandExperiment(loadExperiment(f, narrow).experiment, f);
  assert.deepEqual(
    narrowed.map((r) => r.config.method.params.lr),
    [0.05],
  );
  assert.match(
    userError(() => loadExperiment(f, { sets: ['sweep.method.params.lr=0.05'] })),
    /sweep\.method\.params\.lr: expected array/,
  );
  // The sweep as the profile leaves it counts: a profile can add a swept key.
  const p = dirWith({ 'p.yaml': 'include: base.yaml\nprofiles: {wide: {sweep: {method.params.steps: [1, 2]}}}\n' });
  assert.equal(
    loadExperiment(join(p, 'p.yaml'), { sets: ['method.params.steps=3'] }).experiment.method.params.steps,
    3,
  );
  assert.match(
    userError(() => loadExperiment(join(p, 'p.yaml'), { profile: 'wide', sets: ['method.params.steps=3'] })),
    /sweep\.method\.params\.steps/,
  );
});

test('validate: every error of every file; include fragments checked as fragments', () => {
  const d = dirWith({
    'frag.yaml': 'seeds: [0, 1]\nsweep: {method.params.lr: [0.1, 0.2]}\nprofiles: {quick: {seeds: [0]}}\n',
    'user.yaml': 'include: [base.yaml, frag.yaml]\nname: user\n',
    'badfrag.yaml': 'seeds: [x]\nsweeps: {}\n',
    'user2.yaml': 'include: [base.yaml, badfrag.yaml]\nname: user2\n',
    'two.yaml': 'include: base.yaml\nworld: 7\nmethod: {params: {lr: fast, stpes: 1, hiden: 2}}\n',
  });
  const f = (n: string) => join(d, n);
  const checks = checkFiles([f('user.yaml'), f('frag.yaml'), f('two.yaml'), f('badfrag.yaml'), f('user2.yaml')], {});
  const by = Object.fromEntries(checks.map((c) => [c.file.split('/').pop()!, c]));
  assert.deepEqual([by['user.yaml'].errors, by['user.yaml'].runs], [[], 4]);
  assert.deepEqual(by['frag.yaml'].errors, [], 'a fragment needs no name or method');
  assert.equal(by['frag.yaml'].fragmentOf, f('user.yaml'));
  const two = by['two.yaml'].errors.join('\n');
  assert.equal(by['two.yaml'].errors.length, 4, two);
  for (const bit of [
    /world: expected string/,
    /method\.params\.lr: expected number/,
    /method\.params\.stpes: unknown key/,
    /method\.params\.hiden: unknown key/,
  ]) {
    assert.match(two, bit);
  }
  const frag = by['badfrag.yaml'].errors.join('\n');
  assert.match(frag, /badfrag\.yaml: seeds\.0: expected number, got string 'x'/);
  assert.match(frag, /badfrag\.yaml: sweeps: unknown key \(did you mean 'sweep'\?\)/);
  assert.ok(by['user2.yaml'].errors.length >= 2, 'the including file reports them as a whole too');
  // Given alone, a fragment is an experiment that lacks its name, with a hint.
  const [alone] = checkFiles([f('frag.yaml')], {});
  assert.match(
    alone.errors[0],
    /frag\.yaml: name: expected string, missing \(an include fragment\? validate it together with a file that includes it\)/,
  );
});

test("validate (CLI): the repository's own files pass; a bad file does not stop the others", async () => {
  // experiments/*.yaml experiments/*/*.yaml, as a shell expands them.
  const yamls = (dir: string) =>
    readdirSync(join(PROJECT_ROOT, dir))
      .filter((n) => n.endsWith('.yaml'))
      .sort()
      .map((n) => `${dir}/${n}`);
  const subdirs = readdirSync(join(PROJECT_ROOT, 'experiments'), { withFileTypes: true }).filter((e) =>
    e.isDirectory(),
  );
  const own = [...yamls('experiments'), ...subdirs.flatMap((e) => yamls(`experiments/${e.name}`))];
  const r = await sdd(['validate', ...own], { cwd: PROJECT_ROOT });
  assert.equal(r.exitCode, 0, r.all);
  assert.match(r.stdout, /experiments\/paper\/prompts\.yaml: ok \(include fragment of experiments\/paper\/\w+\.yaml/);
  const d = dirWith({
    'a.yaml': 'include: base.yaml\nseed: 1\n',
    'b.yaml': 'include: base.yaml\nmethod: {params: {lr: x}}\n',
  });
  const bad = await sdd(['validate', join(d, 'a.yaml'), d, join(d, 'base.yaml'), join(d, 'b.yaml')]);
  assert.equal(bad.exitCode, 2, bad.all);
  assert.match(bad.stderr, /a\.yaml: seed: unknown key/);
  assert.match(bad.stderr, /b\.yaml: method\.params\.lr: expected number/);
  assert.match(bad.stdout, /base\.yaml: ok \(1 run\)/);
  assert.match(bad.stderr, /: is a folder, expected an experiment file/);
  assert.match(bad.stdout, /3 of 4 files with errors \(3 errors\)/);
});
