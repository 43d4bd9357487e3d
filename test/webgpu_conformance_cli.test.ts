/**
 * WebGPU conformance through the CLI (items 4 and 5 of the set; the kernels and pipelines are in
 * webgpu_conformance.test.ts):
 *
 *   4. a shrunken quick SDD run (Table 1's sdd.yaml, one prompt, 2 iterations, 4 evaluation
 *      images, HQS over 3 timesteps with K = 2) on webgpu and on wasm, result.json metrics
 *      compared within the tolerances below, and env.json's record of the adapter;
 *   5. `sdd zoo eval` on webgpu against the cards: opt-in (SDD_CONFORMANCE_FULL=1). It evaluates
 *      each model on its card's 2000 test images: featnet alone took 3.5 min on lavapipe, featnet
 *      + idnet 9 min, over the whole set's 4-minute budget, so by default that test is skipped,
 *      saying so.
 *
 * Both runs get their own SDD_CACHE: the HQS scan cache is keyed by models and settings, not by
 * backend, and a shared one would hand the webgpu run the wasm run's scan.
 *
 * Without any WebGPU adapter (initBackend('webgpu') throws BackendChoiceError) both tests are
 * skipped with the reason. With one, failures are failures.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BackendChoiceError, initBackend, shutdownBackend, type BackendInfo } from '../src/backend/index.js';
import { releaseGpu } from '../src/backend/webgpu.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { sdd, tmp } from './helpers.js';

const FULL = process.env.SDD_CONFORMANCE_FULL === '1';

let skipReason: string | null = null;
let probe: BackendInfo | null = null;
try {
  probe = await initBackend('webgpu');
} catch (e) {
  if (!(e instanceof BackendChoiceError)) throw e;
  skipReason = `no WebGPU adapter: ${e.message}`;
}
// The work runs in child CLIs: let go of the adapter so this process can exit.
if (probe) shutdownBackend();
else releaseGpu(undefined);

// ---------------------------------------------------------------------------------------------
// 4. Quick SDD run, webgpu against wasm.
// ---------------------------------------------------------------------------------------------

const SHRINK = [
  'sweep={}', // one prompt (hair_color:black->white), not the quick profile's two
  'method.params.iterations=2',
  'method.params.eval_images=4',
  'method.params.train_images=2',
  'method.params.hqs.images=2',
  'method.params.hqs.from=350',
  'method.params.hqs.to=650',
  'method.params.hqs.stride=150',
];

/**
 * Tolerances of the end-to-end comparison. Every kernel agrees to ~1e-6 relative (the other
 * file), and the run chains them: HQS scan → S → 2 AdamW steps of the mapper → edit → metrics.
 * Adam's first steps divide by √v, so they are nearly sign(g)·lr: a mapper weight whose gradient
 * is at rounding level can move by up to 2·lr on one backend and not the other. Hence bounds
 * about 100× what the kernels give rather than 10×; measured differences are printed.
 *   continuous metrics (FID at n = 4 comes from rank-deficient covariances, whose sqrtm
 *   amplifies feature errors; KID; CLIP score ×100): relative ≤ 1e-3;
 *   cosines in [−1, 1] (directional CLIP, identity) and the HQS curve in [−1, 1]: absolute ≤ 1e-3;
 *   rates are counts of judge decisions (argmax of the attribute heads): one image may flip when
 *   its top two logits are within rounding of each other, so they may differ by at most 1/n;
 *   the selected S must be the same unless a scanned HQS lies within 1e-3 of ξ.
 */
const REL = 1e-3;
const ABS = 1e-3;
const RELATIVE_METRICS = ['fid', 'kid', 'clip_score'] as const;
const ABSOLUTE_METRICS = ['clip_directional', 'identity'] as const;
const RATES = ['hit_rate', 'preservation_rate', 'hit_and_preserved'] as const;
const XI = 0.3; // experiments/base/sdd.yaml selection.xi

interface RunOut {
  backend: string;
  seconds: number;
  exitCode: number | undefined;
  output: string;
  metrics: Record<string, unknown> | null;
  env: { backend: BackendInfo } | null;
}

async function quickRun(backend: 'webgpu' | 'wasm', dir: string): Promise<RunOut> {
  const store = join(dir, `store-${backend}`);
  const s = performance.now();
  const r = await sdd(
    [
      'run',
      'experiments/table1/sdd.yaml',
      '--profile',
      'quick',
      '--backend',
      backend,
      '--store',
      store,
      '--no-report',
      ...SHRINK.flatMap((k) => ['--set', k]),
    ],
    {
      cwd: PROJECT_ROOT,
      env: { SDD_CACHE: join(dir, `cache-${backend}`) },
    },
  );
  const seconds = (performance.now() - s) / 1000;
  let metrics: RunOut['metrics'] = null;
  let env: RunOut['env'] = null;
  try {
    const runs = readdirSync(store).filter((d) => /^[0-9a-f]{12}$/.test(d));
    if (runs.length === 1) {
      metrics = (
        JSON.parse(readFileSync(join(store, runs[0], 'result.json'), 'utf-8')) as { metrics: Record<string, unknown> }
      ).metrics;
      env = JSON.parse(readFileSync(join(store, runs[0], 'env.json'), 'utf-8')) as RunOut['env'];
    }
  } catch {
    // reported below with the run's output
  }
  return { backend, seconds, exitCode: r.exitCode, output: r.all.slice(-3000), metrics, env };
}

const num = (m: Record<string, unknown>, k: string) => m[k] as number;

test(`quick SDD run (1 prompt, 2 iterations, m = 4, HQS 3 t × K = 2) on webgpu vs wasm: continuous metrics rel. ≤ ${REL}, cosines/HQS abs. ≤ ${ABS}, rates ≤ 1/n; env.json records the adapter`, async (t) => {
  if (skipReason) {
    t.diagnostic(`skipped: ${skipReason}`);
    t.skip(skipReason);
    return;
  }
  const dir = tmp('sdd-webgpu-e2e-');
  try {
    const [gpu, ref] = await Promise.all([quickRun('webgpu', dir), quickRun('wasm', dir)]);
    t.diagnostic(`wall: webgpu ${gpu.seconds.toFixed(1)} s, wasm ${ref.seconds.toFixed(1)} s (run at the same time)`);
    for (const r of [gpu, ref])
      assert.ok(r.exitCode === 0 && r.metrics, `${r.backend} run failed (exit ${r.exitCode}):\n${r.output}`);
    const g = gpu.metrics!;
    const w = ref.metrics!;

    // env.json: the adapter on webgpu, none on wasm.
    const a = gpu.env?.backend.adapter;
    assert.equal(gpu.env?.backend.choice, 'webgpu');
    assert.ok(
      a &&
        typeof a.vendor === 'string' &&
        typeof a.architecture === 'string' &&
        (a.vendor || a.architecture || a.device),
      `env.json backend.adapter: ${JSON.stringify(a)}`,
    );
    t.diagnostic(
      `env.json backend.adapter: vendor=${a.vendor} architecture=${a.architecture} device=${a.device} fallback=${a.isFallbackAdapter}`,
    );
    assert.equal(ref.env?.backend.choice, 'wasm');
    assert.equal(ref.env?.backend.adapter, null);

    // Each run scanned for itself (no cache shared across backends).
    assert.equal(g.hqs_cached, false);
    assert.equal(w.hqs_cached, false);
    const n = num(w, 'n');
    assert.equal(num(g, 'n'), n);

    const problems: string[] = [];
    for (const k of RELATIVE_METRICS) {
      if (w[k] === null || g[k] === null) {
        assert.equal(g[k], w[k], `${k}: null on one backend only`);
        continue;
      }
      const e = Math.abs(num(g, k) - num(w, k)) / Math.max(Math.abs(num(w, k)), 1e-12);
      t.diagnostic(`${k}: webgpu ${num(g, k)} wasm ${num(w, k)} rel. diff ${e.toExponential(2)} (≤ ${REL})`);
      if (!(e <= REL)) problems.push(`${k} rel. ${e}`);
    }
    for (const k of ABSOLUTE_METRICS) {
      const e = Math.abs(num(g, k) - num(w, k));
      t.diagnostic(`${k}: webgpu ${num(g, k)} wasm ${num(w, k)} abs. diff ${e.toExponential(2)} (≤ ${ABS})`);
      if (!(e <= ABS)) problems.push(`${k} abs. ${e}`);
    }
    for (const k of RATES) {
      const e = Math.abs(num(g, k) - num(w, k));
      t.diagnostic(`${k}: webgpu ${num(g, k)} wasm ${num(w, k)} (≤ 1/${n})`);
      if (!(e <= 1 / n + 1e-12)) problems.push(`${k} ${num(g, k)} vs ${num(w, k)}`);
    }
    const zg = num(g, 'zero_edits');
    const zw = num(w, 'zero_edits');
    if (Math.abs(zg - zw) > 1) problems.push(`zero_edits ${zg} vs ${zw}`);

    const hg = (g.hqs_curve as { hqs: number[] }).hqs;
    const hw = (w.hqs_curve as { t: number[]; hqs: number[] }).hqs;
    const dh = Math.max(...hw.map((v, i) => Math.abs(v - hg[i])));
    const sg = g.selection as { timesteps: number[]; mean_hqs: number };
    const sw = w.selection as { timesteps: number[]; mean_hqs: number };
    t.diagnostic(
      `HQS curve max abs. diff ${dh.toExponential(2)}; mean HQS over S ${sg.mean_hqs} vs ${sw.mean_hqs}; S ${JSON.stringify(sg.timesteps)} vs ${JSON.stringify(sw.timesteps)}`,
    );
    if (!(dh <= ABS)) problems.push(`HQS curve abs. ${dh}`);
    const nearXi = hw.some((v) => Math.abs(v - XI) < ABS);
    if (nearXi) t.diagnostic(`a scanned HQS is within ${ABS} of ξ = ${XI}: S may differ`);
    else if (JSON.stringify(sg.timesteps) !== JSON.stringify(sw.timesteps))
      problems.push(`S ${JSON.stringify(sg.timesteps)} vs ${JSON.stringify(sw.timesteps)}`);
    else if (!(Math.abs(sg.mean_hqs - sw.mean_hqs) <= ABS)) problems.push(`mean HQS ${sg.mean_hqs} vs ${sw.mean_hqs}`);
    assert.deepEqual(problems, [], `webgpu and wasm runs differ beyond the stated tolerances`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// 5. `sdd zoo eval` on webgpu against the cards (opt-in).
// ---------------------------------------------------------------------------------------------

/** The cheapest models to evaluate: classifiers over 2000 test images, no sampling loops. */
const ZOO_EVAL_MODELS = ['featnet', 'idnet'];

interface ZooEvalRow {
  model: string;
  reproduces: boolean;
  tolerance: number;
  differences: Array<{ key: string; card: number | string; measured: number | string; delta: number | null }>;
}

test(`sdd zoo eval ${ZOO_EVAL_MODELS.join(' ')} --backend webgpu reproduces the cards within zoo eval's GPU tolerance (opt-in: SDD_CONFORMANCE_FULL=1)`, async (t) => {
  if (skipReason) {
    t.diagnostic(`skipped: ${skipReason}`);
    t.skip(skipReason);
    return;
  }
  if (!FULL) {
    const why =
      "opt-in (SDD_CONFORMANCE_FULL=1): zoo eval runs each card's 2000 test images; featnet + idnet took 9 min on lavapipe, over the set's 4-minute budget";
    t.diagnostic(`skipped: ${why}`);
    t.skip(why);
    return;
  }
  const s = performance.now();
  const r = await sdd(['zoo', 'eval', ...ZOO_EVAL_MODELS, '--backend', 'webgpu', '--json'], { cwd: PROJECT_ROOT });
  t.diagnostic(`zoo eval on webgpu: ${((performance.now() - s) / 1000).toFixed(1)} s`);
  const start = r.stdout.indexOf('[');
  assert.ok(start >= 0, `no JSON from zoo eval (exit ${r.exitCode}):\n${r.all.slice(-3000)}`);
  const rows = JSON.parse(r.stdout.slice(start)) as ZooEvalRow[];
  assert.deepEqual(
    rows.map((x) => x.model),
    ZOO_EVAL_MODELS,
  );
  for (const row of rows) {
    t.diagnostic(
      `${row.model}: ${row.reproduces ? 'reproduces' : 'DIFFERS'} (tolerance ${row.tolerance}); ${row.differences.length ? row.differences.map((d) => `${d.key}: card ${d.card}, webgpu ${d.measured} (Δ ${d.delta})`).join('; ') : 'every number equal to the card'}`,
    );
  }
  assert.equal(r.exitCode, 0, r.all.slice(-3000));
  for (const row of rows) assert.ok(row.reproduces, `${row.model}: ${JSON.stringify(row.differences)}`);
});
