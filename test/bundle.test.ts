/**
 * `make bundle` (bin/bundle.mjs): the offline CLI is built, copied to a temporary folder outside
 * the repository (nothing can resolve from its node_modules there) and run with plain `node`, no
 * tsx: doctor, the webgpu addon, a quick Table 1 experiment with --no-report, a zoo training smoke
 * that goes through the piscina pool and its task modules, and a linear-algebra helper thread.
 * About a minute on two cores, most of it the quick experiment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const LIMIT = 40e6; // 40 MB

interface Out {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Plain node (this process's binary, none of its --import flags), SDD_* and NODE_* settings left out. */
function node(args: string[], cwd: string, timeout = 300_000): Promise<Out> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SDD_') && !k.startsWith('NODE_')) env[k] = v;
  env.NODE_PATH = '';
  return new Promise((done) => {
    execFile(process.execPath, args, { cwd, env, timeout, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err
        ? typeof (err as { code?: unknown }).code === 'number'
          ? (err as { code: number }).code
          : null
        : 0;
      done({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const show = (o: Out) => `exit ${o.code}\n--- stdout\n${o.stdout.slice(-3000)}\n--- stderr\n${o.stderr.slice(-3000)}`;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? files(join(dir, d.name)) : [join(dir, d.name)],
  );
}

test('make bundle: the copied dist/ runs with plain node, outside the repository', { timeout: 900_000 }, async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'sdd-bundle-'));
  assert.ok(relative(ROOT, tmp).startsWith('..'), `temp folder ${tmp} must lie outside ${ROOT}`);
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const built = join(tmp, 'built');
  const dist = join(tmp, 'copy', 'sdd');
  const work = join(tmp, 'work'); // the cwd of every command: no repository, no node_modules above it
  mkdirSync(work);
  /** The bundle's CLI, run from `work`. */
  const sdd = (...args: string[]) => node([join(dist, 'sdd.mjs'), ...args], work);
  const table1 = join(dist, 'experiments', 'table1', 'sdd.yaml');

  const b = await node([join(ROOT, 'bin', 'bundle.mjs'), '--out', built], ROOT);
  assert.equal(b.code, 0, show(b));
  assert.match(b.stdout, /^bundle: .* MB on disk/m, show(b));
  // The copy is what runs; the folder it was built in is gone.
  cpSync(built, dist, { recursive: true });
  rmSync(built, { recursive: true });

  await t.test('layout, size, and no path back into the checkout', () => {
    for (const f of [
      'sdd.mjs',
      'bin/sdd.mjs',
      'package.json',
      'src/backend/worker_entry.mjs',
      'src/metrics/numerics/team_entry.mjs',
      'node_modules/piscina/dist/worker.js',
      'node_modules/webgpu/index.js',
      'node_modules/webgpu/dist/linux-x64/dawn.node',
      'node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm',
      'datasets/toyfaces/zoo/featnet/weights.safetensors',
      'datasets/toyfaces/zoo/featnet/card.json',
      'experiments/table1/sdd.yaml',
    ]) {
      assert.ok(existsSync(join(dist, f)), `missing ${f}`);
    }
    assert.ok(readFileSync(join(dist, 'sdd.mjs'), 'utf-8').startsWith('#!/usr/bin/env node\n'));
    const all = files(dist);
    const bytes = all.reduce((a, f) => a + statSync(f).size, 0);
    assert.ok(bytes <= LIMIT, `${(bytes / 2 ** 20).toFixed(1)} MiB is over 40 MB`);
    assert.ok(!all.some((f) => f.endsWith('.ts')), 'no TypeScript in the bundle');
    const leaks = all.filter((f) => /\.(mjs|js|json)$/.test(f) && readFileSync(f, 'utf-8').includes(ROOT));
    assert.deepEqual(leaks, [], `files naming ${ROOT}`);
  });

  await t.test('doctor names a backend', async () => {
    const o = await sdd('doctor');
    assert.equal(o.code, 0, show(o));
    assert.match(o.stdout, /^backend\s+(node-gpu|webgpu|node|wasm|cpu)\b/m, show(o));
  });

  await t.test('the webgpu addon loads from the bundle; --backend webgpu starts or says why not', async () => {
    const url = pathToFileURL(join(dist, 'node_modules', 'webgpu', 'index.js')).href;
    const probe = await node(
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(url)}); console.log(typeof m.create, typeof m.globals);`,
      ],
      work,
    );
    assert.equal(probe.code, 0, show(probe));
    assert.equal(probe.stdout.trim(), 'function object');
    // Through the package name too, as the backend imports it (resolved from the bundle's node_modules).
    const o = await sdd('doctor', '--backend', 'webgpu');
    if (o.code === 0) assert.match(o.stdout, /^backend\s+webgpu\b/m, show(o));
    else assert.doesNotMatch(o.stdout + o.stderr, /failed to load|Cannot find (package|module)/, show(o)); // no adapter here: fine; a missing file: not
  });

  await t.test('a quick Table 1 experiment with --no-report', async () => {
    const store = join(tmp, 'runs');
    const o = await sdd('run', table1, '--profile', 'quick', '--no-report', '--store', store);
    assert.equal(o.code, 0, show(o));
    const runs = readdirSync(store, { withFileTypes: true }).filter(
      (d) => d.isDirectory() && existsSync(join(store, d.name, 'config.json')),
    );
    assert.ok(runs.length > 0, `no runs in ${store}`);
    for (const r of runs) {
      const dir = join(store, r.name);
      assert.ok(
        !existsSync(join(dir, 'error.json')),
        `${r.name} failed: ${existsSync(join(dir, 'error.json')) ? readFileSync(join(dir, 'error.json'), 'utf-8') : ''}`,
      );
      for (const f of ['result.json', 'env.json', 'log.txt']) assert.ok(existsSync(join(dir, f)), `${r.name}: no ${f}`);
      const env = JSON.parse(readFileSync(join(dir, 'env.json'), 'utf-8')) as {
        packages: Record<string, string | null>;
      };
      assert.match(
        env.packages['@tensorflow/tfjs-core'] ?? '',
        /^\d+\.\d+\.\d+/,
        'env.json records the bundled tfjs version',
      );
    }
    // The caches went next to the bundle (its PROJECT_ROOT), not into the checkout or the cwd.
    assert.ok(existsSync(join(dist, '.cache')), 'no .cache in the bundle folder');
    assert.ok(!existsSync(join(work, '.cache')));
  });

  await t.test('reports say they are not in the bundle (one line, exit 2)', async () => {
    const o = await sdd(
      'report',
      table1,
      '--profile',
      'quick',
      '--store',
      join(tmp, 'runs'),
      '--out',
      join(tmp, 'reports'),
    );
    assert.equal(o.code, 2, show(o));
    assert.match(o.stderr, /^sdd: reports are not part of the offline bundle/m, show(o));
  });

  await t.test('the worker pool: piscina, worker_entry and the task modules (zoo train smoke)', async () => {
    // Last: it overwrites the copy's featnet, which the experiment above measured with.
    const o = await sdd('zoo', 'train', 'featnet', '--steps', '2', '--train-n', '32', '--eval-n', '32');
    assert.equal(o.code, 0, show(o));
    const card = JSON.parse(
      readFileSync(join(dist, 'datasets', 'toyfaces', 'zoo', 'featnet', 'card.json'), 'utf-8'),
    ) as { training: { steps: number } };
    assert.equal(card.training.steps, 2, 'the card in the bundle was rewritten by the smoke run');
  });

  await t.test('a linear-algebra helper thread starts from team_entry.mjs and takes jobs', async () => {
    // A job with no strips: the helper enters, finds none, leaves; Ctrl.Next (word 0) counts its one look.
    const url = pathToFileURL(join(dist, 'src', 'metrics', 'numerics', 'team_entry.mjs')).href;
    const code = `
      import { Worker } from 'node:worker_threads';
      const w = new Worker(new URL(${JSON.stringify(url)}), { execArgv: [] }); // not this -e script's flags
      w.on('error', (e) => { console.error(e); process.exit(3); });
      const ctrl = new Int32Array(new SharedArrayBuffer(16));
      w.postMessage({ product: { rows: 0 }, ctrl, strip: 32 });
      const t0 = Date.now();
      while (Atomics.load(ctrl, 0) === 0 && Date.now() - t0 < 30000) await new Promise((r) => setTimeout(r, 20));
      console.log(Atomics.load(ctrl, 0));
      await w.terminate();`;
    const o = await node(['--input-type=module', '-e', code], work, 60_000);
    assert.equal(o.code, 0, show(o));
    assert.equal(o.stdout.trim(), '1', show(o));
  });
});
