/** Experiment files: includes and merge semantics, overrides, sweeps, ids, and bad-input errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { registerBuiltinMethods } from '../methods/index.js';
import { loadExperiment } from './load.js';
import { expandExperiment, ID_LENGTH, runId } from './expand.js';
import { canonicalJson, sha256 } from '../util/hash.js';
import { PROJECT_ROOT } from '../util/env.js';
import { deepMerge } from './merge.js';
import { experimentJsonSchema } from './schema.js';
import { UserError } from '../errors.js';
import { sdd, tmp, writeFiles } from '../../test/helpers.js';

registerBuiltinMethods();

const BASE = `
name: base
method:
  name: toy_fit
  params: {steps: 10, lr: 0.01, hidden: 8}
seeds: [0]
metrics: [fid, kid]
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
    'top.yaml': 'include: mid.yaml\nname: top\nmethod: {params: {hidden: 4}}\nmetrics: [clip_directional]\n',
  });
  const { experiment, sources } = loadExperiment(join(d, 'top.yaml'));
  assert.equal(experiment.name, 'top');
  assert.deepEqual(experiment.method.params, { steps: 10, lr: 0.5, hidden: 4, batch: 64, checkpoint_every: 50 });
  assert.deepEqual(experiment.metrics, ['clip_directional'], 'lists are replaced, not concatenated');
  assert.deepEqual(sources.map((s) => s.split('/').pop()), ['base.yaml', 'mid.yaml', 'top.yaml']);
});

test('extends: is another spelling of include:', () => {
  const d = dirWith({ 'e.yaml': 'extends: [base.yaml]\nname: e\n', 'both.yaml': 'include: base.yaml\nextends: base.yaml\n' });
  assert.equal(loadExperiment(join(d, 'e.yaml')).experiment.method.params.steps, 10);
  assert.match(userError(() => loadExperiment(join(d, 'both.yaml'))), /both\.yaml: extends: use either/);
});

test('--set and profiles override after includes; values are read as YAML', () => {
  const d = dirWith({ 'e.yaml': 'include: base.yaml\nprofiles: {quick: {method.params.steps: 3}}\n' });
  const { experiment } = loadExperiment(join(d, 'e.yaml'), { profile: 'quick', sets: ['method.params.lr=0.25', 'seeds=[4, 5]'] });
  assert.equal(experiment.method.params.steps, 3);
  assert.equal(experiment.method.params.lr, 0.25);
  assert.deepEqual(experiment.seeds, [4, 5]);
});

test('sweep × seeds expands to the cartesian grid with stable, distinct ids', () => {
  const d = dirWith({
    'e.yaml': 'include: base.yaml\nseeds: [0, 1]\nsweep:\n  method.params.lr: [0.1, 0.2, 0.3]\n  method.params.hidden: [4, 8]\n',
  });
  const exp = loadExperiment(join(d, 'e.yaml')).experiment;
  const runs = expandExperiment(exp, 'e.yaml');
  assert.equal(runs.length, 12);
  assert.equal(new Set(runs.map((r) => r.id)).size, 12);
  const again = expandExperiment(loadExperiment(join(d, 'e.yaml')).experiment, 'e.yaml');
  assert.deepEqual(again.map((r) => r.id), runs.map((r) => r.id));
  // Defaults are filled in, so spelling a default out does not change the id.
  const explicit = expandExperiment(loadExperiment(join(d, 'e.yaml'), { sets: ['method.params.batch=64'] }).experiment, 'e.yaml');
  assert.deepEqual(explicit.map((r) => r.id), runs.map((r) => r.id));
  const changed = expandExperiment(loadExperiment(join(d, 'e.yaml'), { sets: ['method.params.batch=32'] }).experiment, 'e.yaml');
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
  const source = expandExperiment(loadExperiment(join(PROJECT_ROOT, 'experiments/table1/sdd.yaml'), { sets: ['method.params.guidance.negative=source'] }).experiment, 'sdd.yaml');
  assert.notEqual(source[0].id, run.id);
  assert.equal(runId(source[0].config), source[0].id);
});

test('where: sets keys for the matching sweep points only; a when-key no run has is an error', () => {
  const d = dirWith({
    'w.yaml': 'include: base.yaml\nsweep:\n  method.params.lr: [0.1, 0.2]\nwhere:\n  - when: { method.params.lr: 0.2 }\n    set: { method.params.hidden: 16 }\n',
    'typo.yaml': 'include: base.yaml\nsweep:\n  method.params.lr: [0.1, 0.2]\nwhere:\n  - when: { method.params.rl: 0.2 }\n    set: { method.params.hidden: 16 }\n',
  });
  const runs = expandExperiment(loadExperiment(join(d, 'w.yaml')).experiment, 'w.yaml');
  const hidden = Object.fromEntries(runs.map((r) => [r.config.method.params.lr as number, r.config.method.params.hidden]));
  assert.equal(hidden[0.2], 16);
  assert.notEqual(hidden[0.1], 16);
  assert.match(userError(() => expandExperiment(loadExperiment(join(d, 'typo.yaml')).experiment, 'typo.yaml')), /typo\.yaml: where\.0\.when\.method\.params\.rl: no run has this key/);
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
  assert.match(userError(() => loadExperiment(f('syntax.yaml'))), /syntax\.yaml: line \d+, column \d+: /);
  assert.match(userError(() => loadExperiment(f('unknown.yaml'))), /unknown\.yaml: method\.params\.stpes: unknown key \(did you mean 'steps'\?\)/);
  assert.match(userError(() => loadExperiment(f('topkey.yaml'))), /topkey\.yaml: seed: unknown key \(did you mean 'seeds'\?\)/);
  assert.match(userError(() => loadExperiment(f('type.yaml'))), /type\.yaml: method\.params\.lr: expected number, got string 'fast'/);
  assert.match(userError(() => loadExperiment(f('missing.yaml'))), /missing\.yaml: include: file not found: .*nothere\.yaml/);
  assert.match(userError(() => loadExperiment(f('cyc-a.yaml'))), /include: cycle .*cyc-a\.yaml → .*cyc-b\.yaml → .*cyc-a\.yaml/);
  assert.match(userError(() => loadExperiment(f('tag.yaml'))), /tag\.yaml: line 1, column \d+: .*tag/i);
  assert.match(userError(() => loadExperiment(f('method.yaml'))), /method\.name: unknown method 'toy_fitt' \(did you mean 'toy_fit'\?\)/);
  const sweepExp = loadExperiment(f('sweep.yaml')).experiment;
  assert.match(userError(() => expandExperiment(sweepExp, 'sweep.yaml')), /method\.params\.steps: .*in sweep point method\.params\.steps=-1/);
  assert.match(userError(() => loadExperiment(f('dup.yaml'))), /dup\.yaml: line 2, column 1: .*unique/i);
  assert.match(userError(() => loadExperiment(f('base.yaml'), { sets: ['nokey'] })), /^--set: expected KEY=VALUE/);
  assert.match(userError(() => loadExperiment(f('base.yaml'), { profile: 'quik' })), /profiles: no profile 'quik'/);
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
  for (const k of ['name', 'include', 'method', 'seeds', 'sweep', 'metrics', 'profiles', 'version']) {
    assert.ok(k in s.properties, k);
  }
  assert.match(JSON.stringify(s.properties.method), /checkpoint_every/);
});
