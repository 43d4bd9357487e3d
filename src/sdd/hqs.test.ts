/** HQS against NumPy/SciPy (test/fixtures/sdd/make_hqs_fixture.py), and timestep selection. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../util/env.js';
import { gradientStats, hqsCurve, readHqs, scanTimesteps, selectTimesteps, type ScanStats } from './hqs.js';

const fx = JSON.parse(readFileSync(join(PROJECT_ROOT, 'test/fixtures/sdd/hqs.json'), 'utf-8')) as {
  shape: number[];
  d: number[];
  N: number[];
  H: number[];
  H_full: number[];
  paper: number[];
  code: number[];
  eq_paper: number[];
  eq_code: number[];
};

const close = (a: number, b: number, tol: number) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

test('N, H and both HQS forms match the NumPy reference (rel. 1e-9)', () => {
  const [T, K, H, W, C] = fx.shape;
  const per = H * W * C;
  const N: number[] = [];
  const E: number[] = [];
  for (let t = 0; t < T; t++) {
    let n = 0;
    let e = 0;
    for (let k = 0; k < K; k++) {
      const s = gradientStats(fx.d.slice((t * K + k) * per, (t * K + k + 1) * per), H, W, C);
      n += s.N / K;
      e += s.H / K;
    }
    N.push(n);
    E.push(e);
  }
  N.forEach((v, i) => assert.ok(close(v, fx.N[i], 1e-9), `N[${i}] ${v} vs ${fx.N[i]}`));
  E.forEach((v, i) => assert.ok(close(v, fx.H[i], 1e-9), `H[${i}] ${v} vs ${fx.H[i]}`));
  hqsCurve(N, E, 'paper').forEach((v, i) => assert.ok(close(v, fx.paper[i], 1e-9), `paper[${i}]`));
  hqsCurve(N, E, 'code').forEach((v, i) => assert.ok(close(v, fx.code[i], 1e-9), `code[${i}]`));
  // The two forms order timesteps identically, and ξ maps as ξ_code = (ξ_paper + 1)/2.
  const p = hqsCurve(N, E, 'paper');
  const c = hqsCurve(N, E, 'code');
  p.forEach((v, i) => assert.ok(Math.abs(c[i] - (v + 1) / 2) < 1e-12));
});

test('both HQS forms (released, eq11-12) × both scalings read from per-image statistics match NumPy (rel. 1e-9)', () => {
  const [T, K, H, W, C] = fx.shape;
  const per = H * W * C;
  const stats: ScanStats = { N: [], H: [], H_full: [] };
  for (let t = 0; t < T; t++) {
    const s = Array.from({ length: K }, (_, k) =>
      gradientStats(fx.d.slice((t * K + k) * per, (t * K + k + 1) * per), H, W, C),
    );
    stats.N.push(s.map((x) => x.N));
    stats.H.push(s.map((x) => x.H));
    stats.H_full.push(s.map((x) => x.H_full));
  }
  const want: Record<string, number[]> = {
    'released/paper': fx.paper,
    'released/code': fx.code,
    'eq11-12/paper': fx.eq_paper,
    'eq11-12/code': fx.eq_code,
  };
  for (const [name, ref] of Object.entries(want)) {
    const [form, scale] = name.split('/') as ['released' | 'eq11-12', 'paper' | 'code'];
    const r = readHqs(stats, form, scale);
    ref.forEach((v, i) => assert.ok(close(r.hqs[i], v, 1e-9), `${name}[${i}] ${r.hqs[i]} vs ${v}`));
  }
  const eq = readHqs(stats, 'eq11-12', 'paper');
  eq.H.forEach((v, i) => assert.ok(close(v, fx.H_full[i], 1e-9), `H_full[${i}]`));
  // The forms are not the same curve on this data (a switch that changed nothing would pass otherwise).
  assert.ok(fx.paper.some((v, i) => Math.abs(v - fx.eq_paper[i]) > 0.01));
});

test('selection: threshold, largest and random; |S| and mean HQS reported; empty S is an error', () => {
  const ts = scanTimesteps();
  assert.equal(ts.length, 19);
  assert.deepEqual([ts[0], ts[18]], [50, 950]);
  const hqs = ts.map((t) => -Math.abs(t - 400) / 450); // peaks at 400
  const big = selectTimesteps(ts, hqs, { strategy: 'threshold', xi: -0.3 });
  const small = selectTimesteps(ts, hqs, { strategy: 'threshold', xi: -0.1 });
  assert.ok(small.size < big.size && small.timesteps.every((t) => big.timesteps.includes(t)));
  assert.ok(small.mean_hqs! > big.mean_hqs!);
  assert.deepEqual(selectTimesteps(ts, hqs, { strategy: 'largest' }).timesteps, [400]);
  const r = selectTimesteps(ts, hqs, { strategy: 'random', range: [20, 980] });
  assert.equal(r.size, 961);
  assert.throws(
    () => selectTimesteps(ts, hqs, { strategy: 'threshold', xi: 0.5 }),
    /no scanned timestep has HQS > ξ = 0.5/,
  );
});
