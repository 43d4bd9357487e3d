/**
 * The external method through the method contract (docs/method-contract.md), with real processes:
 * the example plugin (examples/plugins/blend/plugin.py) end to end on toyfaces beside SDEdit, the
 * run identity of a plugin's files, and hostile plugins (written here into a temp folder), each of
 * which must fail its run with a one-line error.json and no result.json.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sdd, tmp, writeFiles } from './helpers.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { registerBuiltinMethods } from '../src/methods/index.js';
import { loadExperiment } from '../src/experiments/load.js';
import { expandExperiment } from '../src/experiments/expand.js';

registerBuiltinMethods();

const PYTHON = process.env.SDD_PYTHON ?? 'python3';
const noPython = (() => {
  try {
    execFileSync(PYTHON, ['-c', 'import numpy'], { stdio: 'ignore' });
    return false;
  } catch {
    return `${PYTHON} with numpy is needed (Debian: apt-get install python3-numpy)`;
  }
})();

const plan = (file: string, profile?: string) => expandExperiment(loadExperiment(file, { profile }).experiment, file);

test('run ids: methods without a plan hook keep theirs; a plugin is identified by its files, not where they lie', () => {
  // The id of SDEdit's quick toyfaces run before Method.plan existed.
  assert.equal(plan(join(PROJECT_ROOT, 'experiments/base/sdedit.yaml'), 'quick')[0].id, '3e94efecf2ac');
  const yaml = (dir: string) => {
    writeFiles(dir, { 'plugin/run.py': 'print("hi")\n', 'e.yaml': 'name: e\nmethod: {name: external, params: {command: [python3, plugin/run.py], prompt: hair_color:black->white}}\n' });
    return join(dir, 'e.yaml');
  };
  const [a, b] = [plan(yaml(tmp())), plan(yaml(tmp()))].map((r) => r[0]);
  assert.equal(a.id, b.id, 'the same plugin in two places: one run');
  assert.notEqual(a.config.method.params.command, b.config.method.params.command);
  const params = a.config.method.params as { command: string[]; file_sha256: Record<string, string> };
  assert.ok(existsSync(params.command[1]), 'the script made absolute in config.json');
  assert.match(Object.values(params.file_sha256)[0], /^[0-9a-f]{64}$/);
  assert.deepEqual((a.config.identity as { command: unknown[] }).command[1], { file: 'run.py', sha256: Object.values(params.file_sha256)[0] });
  const edited = tmp();
  const f = yaml(edited);
  writeFileSync(join(edited, 'plugin/run.py'), 'print("changed")\n');
  assert.notEqual(plan(f)[0].id, a.id, 'an edited plugin is a new run');
  assert.ok(a.config.identity && !('hang_timeout_s' in a.config.identity), 'how long a hang is waited for is not part of the id');
  const missing = tmp();
  writeFiles(missing, { 'e.yaml': 'name: e\nmethod: {name: external, params: {command: [python3, nope.py], prompt: p}}\n' });
  assert.throws(() => plan(join(missing, 'e.yaml')), /e\.yaml: method\.params\.command\.1: nope\.py: not found/);
});

test('the example plugin end to end on toyfaces: FID and CLIP beside SDEdit on the same prompt', { skip: noPython }, async () => {
  const store = tmp();
  const r = await sdd(['run', 'experiments/examples/external.yaml', 'experiments/base/sdedit.yaml', '--profile', 'quick', '--store', store, '--jobs', '2'], { env: { SDD_CACHE: tmp() } });
  assert.equal(r.exitCode, 0, r.all.slice(-3000));
  const runs = readdirSync(store).filter((d) => existsSync(join(store, d, 'config.json')));
  assert.equal(runs.length, 2);
  const byMethod = new Map(runs.map((id) => [JSON.parse(readFileSync(join(store, id, 'config.json'), 'utf-8')).method.name as string, id]));
  const result = (m: string) => (JSON.parse(readFileSync(join(store, byMethod.get(m)!, 'result.json'), 'utf-8')) as { metrics: Record<string, unknown> }).metrics;
  const [ext, ref] = [result('external'), result('sdedit')];
  assert.equal(ext.prompt, ref.prompt);
  for (const k of ['fid', 'kid', 'clip_directional', 'clip_score', 'hit_rate', 'preservation_rate', 'identity', 'tau_train_s', 'tau_infer_s']) {
    assert.equal(typeof ext[k], typeof ref[k], k);
    if (typeof ref[k] === 'number') assert.ok(Number.isFinite(ext[k]), `${k} = ${ext[k]}`);
  }
  assert.deepEqual(ext.models, ref.models, 'measured with the same world models');
  assert.ok((ext.fid as number) > 0, 'the plugin changed the images');
  const env = ext.plugin_env as Record<string, unknown>;
  assert.deepEqual(Object.keys(env).sort(), ['device', 'interpreter', 'precision', 'threads', 'versions']);
  assert.ok((ext.plugin as { peak_memory_bytes: number }).peak_memory_bytes > 0);
  const dir = join(store, byMethod.get('external')!);
  const curve = readFileSync(join(dir, 'metrics.jsonl'), 'utf-8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; delta: number });
  assert.deepEqual(curve.map((c) => c.step), [0, 1], 'the training curve forwarded (128 images in batches of 64)');
  assert.ok(existsSync(join(dir, 'artifacts', 'edits.png')) && existsSync(join(dir, 'contract', 'out', 'timing.json')));
  assert.deepEqual(readdirSync(join(dir, 'contract', 'in')), ['manifest.json'], 'the arrays pruned after the run');
});
