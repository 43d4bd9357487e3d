/**
 * The regress page: intervals written "[a, b]" in a number format that suits tiny differences,
 * the verdict "significant, below threshold" told apart from "within noise", grids captioned with
 * their prompt, and the profile in the title.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmp } from '../../test/helpers.js';
import type { Comparison } from '../regress/compare.js';
import { RunStore } from '../runs/store.js';
import type { RunConfig } from '../experiments/expand.js';
import { toPng } from '../util/image_io.js';
import { regressPage } from './regress_page.js';

const row = (metric: string, delta: number, lo: number, hi: number, verdict: Comparison['verdict']): Comparison => ({
  metric,
  prompt: 'hair_color:black->white',
  n: 16,
  seeds: [1, 1],
  baseline: 0.998,
  candidate: 0.998 + delta,
  delta,
  lo,
  hi,
  p: 0.0001,
  p_adjusted: 0.00055,
  test: 'wilcoxon (approx)',
  mde: 3.2e-6,
  threshold: { min_effect: 0.01, worse: 'lower' },
  verdict,
});

function sideStore(): string {
  const dir = tmp();
  const store = new RunStore(dir);
  const config = {
    experiment: 'x',
    seed: 0,
    method: { name: 'sdd', version: 1, params: {} },
    point: {},
  } as unknown as RunConfig;
  const run = store.prepare('abc123abc123', config);
  writeFileSync(join(run, 'result.json'), JSON.stringify({ metrics: { prompt: 'hair_color:black->white' } }));
  writeFileSync(join(run, 'artifacts', 'edits.png'), toPng(new Float32Array(4 * 4 * 3).fill(0.5), 4, 4));
  return dir;
}

test('regress page: [a, b] intervals, "significant, below threshold", grids named by prompt, profile in the title', async () => {
  const rows = [
    row('identity', -0.0000105, -0.0000177, -0.00000309, 'significant, below threshold'),
    row('clip_directional', 0, -0.002, 0.003, 'within noise'),
  ];
  const setup = {
    baseline: 'zoo:a',
    candidate: 'zoo:b',
    file: 'experiments/regression.yaml',
    profile: 'quick',
    title: 'Regression check',
  };
  const path = await regressPage(tmp(), 'regress-x', rows, setup, [sideStore(), sideStore()]);
  const html = readFileSync(path, 'utf-8');
  assert.match(html, /<h1>sdd regress · Regression check — quick profile: 1 prompt, 16 images per run<\/h1>/);
  assert.ok(
    html.includes('-1.05e-5\u00a0[-1.77e-5,\u00a0-3.09e-6]'),
    'the interval as [a, b], tiny values with an exponent',
  );
  assert.ok(!html.includes('-0.0000105 –'));
  assert.ok(html.includes('<td><span class="t">significant, below threshold</span></td>'));
  assert.match(html, /1 significant, below threshold, 1 within noise/);
  assert.match(html, /baseline · hair_color:black-&gt;white · seed 0/);
  assert.match(html, /candidate · hair_color:black-&gt;white · seed 0/);
});
