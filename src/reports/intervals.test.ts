/**
 * Report intervals on runs written to disk as a method writes them (result.json values,
 * artifacts/items.json, artifacts/features.safetensors): per prompt, the item bootstrap (one seed)
 * and the clipped t over seeds; per method, the prompt-stratified bootstrap, against the normal
 * approximation of the same mean; training-step durations with a resume gap left out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmp } from '../../test/helpers.js';
import { f32, writeSafetensors } from '../util/safetensors.js';
import { fidFromFeatures } from '../metrics/fid.js';
import { FID_RESAMPLES, methodSummary, promptSummary, RESAMPLES } from './intervals.js';
import { RunData } from './run_data.js';
import { metricRange } from '../metrics/registry.js';
import { metricLines, STEP_SECONDS } from './sections/training.js';

const N = 40;
const D = 48;

/** A run on disk: per-item values from a closed form, the result's means computed from them. */
function run(root: string, prompt: string, seed: number, hitRate: number): RunData {
  const dir = join(root, `${prompt}-${seed}`);
  mkdirSync(join(dir, 'artifacts'), { recursive: true });
  const clip = Array.from({ length: N }, (_, i) => 0.2 + 0.15 * Math.sin(i * 1.7 + seed + prompt.length));
  const hit = Array.from({ length: N }, (_, i) => (i < Math.round(hitRate * N) ? 1 : 0));
  const wave = (k: number, s: number) => Math.sin(0.37 * k + s) + 0.5 * Math.cos(0.011 * k * (k % 7) + s);
  const feat = (s: number) => Float32Array.from({ length: N * D }, (_, k) => wave(k, s));
  const [orig, edit] = [feat(1 + seed), feat(2.5 + seed + prompt.length)];
  writeFileSync(join(dir, 'artifacts', 'items.json'), JSON.stringify({ prompt, clip_directional: clip, hit }));
  const features = new Map([
    ['original', f32([N, D], orig)],
    ['edited', f32([N, D], edit)],
  ]);
  writeSafetensors(join(dir, 'artifacts', 'features.safetensors'), features);
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const fid = fidFromFeatures(edit, N, orig, N, D);
  const values = { prompt, clip_directional: mean(clip), hit_rate: mean(hit), fid, tau_train_s: 10 + seed };
  return new RunData(`${prompt}-${seed}`, dir, prompt, seed, values);
}

test('per prompt: one seed → item bootstrap inside the range; ≥ 2 seeds → t over seeds, clipped and marked', () => {
  const root = tmp();
  const one = [run(root, 'a', 0, 0.5)];
  for (const m of ['clip_directional', 'hit_rate', 'fid']) {
    const s = promptSummary(one, m, 0)!;
    assert.equal(s.resamples, m === 'fid' ? FID_RESAMPLES : RESAMPLES);
    assert.match(s.interval, new RegExp(`bootstrap over ${N} items`));
    assert.ok(s.lo! < s.mean && s.mean < s.hi!, `${m}: ${s.lo} < ${s.mean} < ${s.hi}`);
    assert.ok(s.lo! >= metricRange(m)[0] && s.hi! <= metricRange(m)[1]);
    assert.deepEqual(promptSummary(one, m, 0), s, 'seeded');
  }
  // A binomial proportion at p = 0.5, N = 40: the bootstrap's 95% half-width is ≈ 1.96·√(p(1−p)/N) = 0.155.
  const h = promptSummary(one, 'hit_rate', 0)!;
  assert.ok(Math.abs((h.hi! - h.lo!) / 2 - 0.155) < 0.03, `half-width ${(h.hi! - h.lo!) / 2}`);
  // τ has no per-item values: no interval from one run, and it says so.
  const tauOne = promptSummary(one, 'tau_train_s', 0)!;
  assert.deepEqual([tauOne.lo, tauOne.interval], [null, 'none: one seed, no per-item values']);
  // Two seeds at hit rates 0.05 and 0.95: t(1) = 12.7 would give −5.2 … 6.2.
  const two = [run(root, 'a', 0, 0.05), run(root, 'a', 1, 0.95)];
  const t = promptSummary(two, 'hit_rate', 0)!;
  assert.deepEqual([t.lo, t.hi, t.clipped], [0, 1, true]);
  assert.equal(t.interval, '95% t over 2 seeds, clipped to [0, 1]');
  const tau = promptSummary(two, 'tau_train_s', 0)!;
  assert.ok(Math.abs(tau.hi! - (10.5 + 12.706 * 0.5)) < 1e-9 && !tau.clipped);
});

test('per method: mean over prompts, prompt-stratified (seed, item) bootstrap ≈ the normal approximation', () => {
  const root = tmp();
  const byPrompt: Array<[string, RunData[]]> = [
    ['p1', [run(root, 'p1', 0, 0.3)]],
    ['p2', [run(root, 'p2', 0, 0.6)]],
    ['p3', [run(root, 'p3', 0, 0.8)]],
  ];
  const s = methodSummary(byPrompt, 'hit_rate')!;
  const rates = [0.3, 0.6, 0.8].map((p) => Math.round(p * N) / N);
  assert.ok(Math.abs(s.mean - rates.reduce((a, b) => a + b) / 3) < 1e-12);
  // se of the mean of three independent proportions: √(Σ p(1−p)/N)/3.
  const se = Math.sqrt(rates.reduce((a, p) => a + (p * (1 - p)) / N, 0)) / 3;
  const half = (s.hi! - s.lo!) / 2;
  assert.ok(Math.abs(half - 1.96 * se) < 0.2 * 1.96 * se, `half-width ${half} vs ${1.96 * se}`);
  const how = 'mean over 3 prompts; 95% bootstrap over (prompt, item) pairs within each prompt, 1000 resamples, seed 0';
  assert.equal(s.interval, how);
  const fid = methodSummary(byPrompt, 'fid')!;
  assert.ok(fid.lo! >= 0 && fid.lo! < fid.mean && fid.mean < fid.hi!, `${fid.lo} ${fid.mean} ${fid.hi}`);
  assert.equal(fid.resamples, FID_RESAMPLES);
  // With seeds, they are resampled too; τ (no items) then gets an interval from the seeds alone.
  const seeded: Array<[string, RunData[]]> = [['p1', [run(root, 'p1', 0, 0.3), run(root, 'p1', 1, 0.4)]]];
  assert.match(methodSummary(seeded, 'hit_rate')!.interval, /\(prompt, item\) pairs and seeds/);
  assert.match(methodSummary(seeded, 'tau_train_s')!.interval, /bootstrap over seeds/);
  assert.equal(methodSummary(byPrompt, 'tau_train_s')!.lo, null);
});

test('training curves: seconds per step from consecutive rows; the step across a resume is left out', () => {
  const dir = tmp();
  const t0 = Date.parse('2024-01-01T00:00:00Z') / 1000;
  // Steps 0–3 at 0.5 s, the process killed, restarted 100 s later, steps 4–5 at 0.25 s.
  const times = [t0 + 1, t0 + 1.5, t0 + 2, t0 + 2.5, t0 + 102.75, t0 + 103];
  const rows = times.map((time, step) => JSON.stringify({ step, time, loss: 1 / (step + 1), t: 500 }));
  writeFileSync(join(dir, 'metrics.jsonl'), rows.join('\n') + '\n');
  const iso = (s: number) => new Date(s * 1000).toISOString();
  const start = (s: number) => `${iso(s)} start sdd seed=0 backend=wasm\n`;
  writeFileSync(join(dir, 'log.txt'), `${start(t0)}${start(t0 + 102)}${iso(t0 + 102)} resuming at iteration 4\n`);
  const pts = metricLines({ id: 'r', dir });
  const steps = pts.filter((p) => p.metric === STEP_SECONDS).map((p) => [p.step, p.value]);
  assert.deepEqual(steps, [
    [1, 0.5],
    [2, 0.5],
    [3, 0.5],
    [5, 0.25],
  ]);
  const metrics = [...new Set(pts.map((p) => p.metric))].sort();
  assert.deepEqual(metrics, ['loss', STEP_SECONDS].sort(), 'no wall-clock time, no sampled t');
});

test('a rate whose items all agree gets the Wilson score interval, not a zero-width bootstrap', async () => {
  const { wilson } = await import('./intervals.js');
  // End to end: a prompt whose N items all missed, and a method of two such prompts.
  const root = tmp();
  const none = promptSummary([run(root, 'z', 0, 0)], 'hit_rate', 0)!;
  assert.deepEqual([none.mean, none.lo, none.hi], [0, 0, wilson(0, N).hi]);
  assert.match(none.interval, /Wilson score over 40 pooled items/);
  const both = methodSummary(
    [
      ['y', [run(root, 'y', 0, 0)]],
      ['z', [run(root, 'z', 0, 0)]],
    ],
    'hit_rate',
  )!;
  assert.deepEqual([both.lo, both.hi], [0, wilson(0, 2 * N).hi]);
  // scipy.stats.binomtest(k, n).proportion_ci(method='wilson'), abs. 1e-9
  const w0 = wilson(0, 8);
  assert.ok(w0.lo === 0 && Math.abs(w0.hi - 0.32440756488388023) < 1e-9, JSON.stringify(w0));
  const w3 = wilson(3, 10);
  const near = (a: number, b: number) => Math.abs(a - b) < 1e-9;
  assert.ok(near(w3.lo, 0.10779126740630102) && near(w3.hi, 0.6032218525388546), JSON.stringify(w3));
});
