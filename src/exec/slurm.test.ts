/**
 * The Slurm executor's pieces that need no cluster: squeue's task ids, the job script, resources
 * (CLI over file over method), and bad input. The cluster itself: test/slurm.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { registerBuiltinMethods } from '../methods/index.js';
import { planAll } from '../experiments/plan.js';
import { jobScript, resourcesOf } from './slurm_job.js';
import { expandTaskIds } from './slurm_queue.js';
import { sdd, tmp, writeFiles } from '../../test/helpers.js';

registerBuiltinMethods();

test('squeue task ids: ranges with a throttle, lists, single tasks and plain jobs', () => {
  assert.deepEqual(expandTaskIds('12_[0-3%2]'), ['12_0', '12_1', '12_2', '12_3']);
  assert.deepEqual(expandTaskIds('12_[1,4-5]'), ['12_1', '12_4', '12_5']);
  assert.deepEqual(expandTaskIds('12_7'), ['12_7']);
  assert.deepEqual(expandTaskIds('99'), ['99']);
});

test('job script: one array with its throttle, the resources asked for, and the single-run entry point', () => {
  const script = jobScript({
    name: 'sdd-t',
    count: 6,
    res: {
      cpus: 4,
      mem: '16G',
      time: '2:00:00',
      gpus: 1,
      partition: 'gpu',
      account: 'lab',
      qos: 'high',
      max_parallel: 2,
      requeue: true,
      extra: ['--constraint=h200'],
    },
    submission: "/store/.slurm/x y'z",
    backend: 'webgpu',
    node: '/opt/node/bin/node',
    bin: '/code/bin/sdd.mjs',
  });
  for (const line of [
    '#SBATCH --array=0-5%2',
    '#SBATCH --cpus-per-task=4',
    '#SBATCH --mem=16G',
    '#SBATCH --time=2:00:00',
    '#SBATCH --gres=gpu:1',
    '#SBATCH --partition=gpu',
    '#SBATCH --account=lab',
    '#SBATCH --qos=high',
    '#SBATCH --requeue',
    '#SBATCH --constraint=h200',
    '#SBATCH --open-mode=append',
  ]) {
    assert.ok(script.split('\n').includes(line), `has ${line}:\n${script}`);
  }
  // Paths with spaces and quotes survive the shell.
  assert.match(script, /sed -n "\$\(\(SLURM_ARRAY_TASK_ID \+ 1\)\)p" '\/store\/\.slurm\/x y'\\''z\/runs\.txt'/);
  assert.match(
    script,
    /exec '\/opt\/node\/bin\/node' '\/code\/bin\/sdd\.mjs' __run-one "\$DIR" --backend webgpu >>"\$DIR\/output\.txt" 2>&1/,
  );
  const plain = jobScript({
    name: 'n',
    count: 1,
    res: { requeue: false },
    submission: '/s',
    node: 'node',
    bin: 'b',
    backend: 'auto',
  });
  assert.match(plain, /#SBATCH --array=0-0\n/);
  assert.match(plain, /#SBATCH --no-requeue/);
  assert.doesNotMatch(plain, /--backend|--gres|--mem/);
});

test('resources: CLI flags over the experiment file over the method defaults', () => {
  const d = tmp();
  writeFiles(d, {
    'e.yaml':
      'name: r\nmethod: {name: sdd, params: {prompt: "pose:frontal->side"}}\nslurm: {mem: 32G, partition: gpu}\n',
  });
  const [run] = planAll([join(d, 'e.yaml')], {});
  assert.deepEqual(resourcesOf(run), { cpus: 4, mem: '32G', time: '4:00:00', partition: 'gpu' });
  assert.deepEqual(resourcesOf(run, { time: '30', gpus: 1, partition: 'debug' }), {
    cpus: 4,
    mem: '32G',
    time: '30',
    gpus: 1,
    partition: 'debug',
  });
  // A GPU backend asks for a GPU unless the file or a flag says how many.
  assert.equal(resourcesOf(run, {}, 'webgpu').gpus, 1);
  assert.equal(resourcesOf(run, { gpus: 0 }, 'webgpu').gpus, 0);
  assert.equal(resourcesOf(run, {}, 'wasm').gpus, undefined);
  // A torch-engine run computes on a GPU: one per task unless told otherwise (its evaluation on wasm).
  const [torch] = planAll([join(d, 'e.yaml')], { sets: ['engine=torch'] });
  assert.equal(resourcesOf(torch, {}, 'wasm').gpus, 1);
  assert.equal(resourcesOf(torch, { gpus: 0 }, 'wasm').gpus, 0);
});

test('bad cluster input: one line naming the file and key, or the flag, exit 2, nothing submitted', async () => {
  const d = tmp();
  writeFiles(d, {
    'ok.yaml': 'name: ok\nmethod: {name: toy_fit, params: {steps: 5}}\n',
    'mem.yaml': 'name: m\nmethod: {name: toy_fit}\nslurm: {mem: lots}\n',
    'key.yaml': 'name: k\nmethod: {name: toy_fit}\nslurm: {gpu: 1}\n',
    'ex.yaml': 'name: x\nmethod: {name: toy_fit}\nexecutor: pbs\n',
    'sl.yaml': 'name: s\nmethod: {name: toy_fit}\nexecutor: slurm\n',
    'lo.yaml': 'name: l\nmethod: {name: toy_fit}\nexecutor: local\n',
  });
  const store = join(d, 'runs');
  // A PATH with node and nothing else.
  const nodeOnly = join(d, 'bin');
  mkdirSync(nodeOnly);
  symlinkSync(process.execPath, join(nodeOnly, 'node'));
  const cases: Array<[string[], RegExp, Record<string, string>?]> = [
    [['run', join(d, 'mem.yaml')], /mem\.yaml: slurm\.mem: a Slurm memory size/],
    [['run', join(d, 'key.yaml')], /key\.yaml: slurm.*gpu/],
    [['run', join(d, 'ex.yaml')], /ex\.yaml: executor/],
    [['run', join(d, 'ok.yaml'), '--executor', 'slurm', '--time', 'soon'], /--time: a Slurm time/],
    [['run', join(d, 'ok.yaml'), '--executor', 'slurm', '--sbatch', 'constraint=a100'], /--sbatch: an sbatch option/],
    [['run', join(d, 'ok.yaml'), '--detach'], /--detach: only with --executor slurm/],
    [
      ['run', join(d, 'lo.yaml'), join(d, 'sl.yaml')],
      /the experiment files name different executors \(local, slurm\): choose one with --executor/,
    ],
    // No Slurm client on PATH: said in one line, not a stack.
    [['run', join(d, 'sl.yaml')], /--executor slurm: sbatch not found on PATH/, { PATH: nodeOnly }],
    // A cluster configuration that is not there (said at once: Slurm's own commands retry it for a minute).
    [
      ['run', join(d, 'sl.yaml')],
      /--executor slurm: SLURM_CONF=.*no-such-slurm\.conf: no such file/,
      { SLURM_CONF: join(d, 'no-such-slurm.conf') },
    ],
    [['run', join(d, 'sl.yaml')], /--executor slurm: SLURM_CONF=: no such file/, { SLURM_CONF: '' }],
  ];
  for (const [args, re, env] of cases) {
    const r = await sdd([...args, '--store', store], { env });
    assert.equal(r.exitCode, 2, `${args.join(' ')}:\n${r.all}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line for ${args.join(' ')}:\n${r.stderr}`);
    assert.match(lines[0], re);
  }
  assert.ok(
    !existsSync(join(store, '.slurm')) || readdirSync(join(store, '.slurm')).every((n) => n === 'lock'),
    'nothing submitted',
  );
});
