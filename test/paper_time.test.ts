/**
 * The arithmetic of `make paper-time` (bench/paper_time.ts): the per-iteration median read from a
 * run's metrics.jsonl blocks, and Eq. 13–15 with the break-even m and the iteration count for the
 * paper's 14.9×, checked on the PyTorch H200 figures quoted in issue #20 (τ_iter 0.176 s gives
 * 916 s per prompt and break-even m ≈ 843; the rounding gives 918 s and m ≈ 846).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { iterationMedian, PAPER_TABLE1, timeColumn, writePage } from '../bench/paper_time.js';
import { dumpDom } from '../src/util/chromium.js';
import { tmp } from './helpers.js';

test('iteration median: blocks of 10 stamped at their first row, the warm-up block left out', () => {
  const rows: string[] = [];
  // Block 0 ends at t = 100 (warm-up), then blocks of 10 iterations taking 2, 3, 2.5, 9 s.
  const ends = [100, 102, 105, 107.5, 116.5];
  ends.forEach((t, b) => {
    for (let i = 0; i < 10; i++) rows.push(JSON.stringify({ step: b * 10 + i, time: t + i * 0.001 }));
  });
  const m = iterationMedian(rows.join('\n'));
  assert.equal(m.blocks, 4);
  assert.ok(Math.abs(m.seconds - 0.275) < 1e-9, `${m.seconds}`);
  assert.throws(() => iterationMedian(rows.slice(0, 20).join('\n')), /too few iterations/);
});

test("Eq. 13–15 on issue #20's PyTorch figures: SDD ≈ 9.2e3 s vs SDEdit 1.1e3 s, break-even m ≈ 843", () => {
  const c = timeColumn({ hqs_s: 212, iter_s: 0.176, sdd_infer_s: 0.014, sdedit_infer_s: 1.1, ddib_infer_s: 3.5 }, 4000);
  assert.ok(Math.abs(c.tau.sdd_train_s - 916) < 1e-9);
  assert.ok(Math.abs(c.total_s.sdd - (10 * 916 + 1000 * 0.014)) < 1e-9);
  assert.ok(Math.abs(c.total_s.sdedit - 1100) < 1e-9);
  assert.ok(Math.abs(c.total_s.ddib - 3500) < 1e-9);
  assert.ok(Math.abs(c.sdd_vs_sdedit - 1100 / 9174) < 1e-12);
  assert.ok(Math.abs(c.break_even_m! - 916 / (1.1 - 0.014)) < 1e-9 && Math.round(c.break_even_m!) === 843);
  // 14.9× needs SDD's total at 1100 / 14.9 = 73.8 s: below n·τ_HQS alone, so no iteration count does it.
  assert.equal(c.iterations_for_paper_ratio, null);
  // Without the scan cost, the count that meets it: n·(I·τ_iter) + m·n·τ_infer = T_SDEdit / ratio.
  const noScan = timeColumn(
    { hqs_s: 0, iter_s: 0.176, sdd_infer_s: 0.014, sdedit_infer_s: 1.1, ddib_infer_s: 3.5 },
    4000,
  );
  const want = (1100 / (PAPER_TABLE1.sdedit / PAPER_TABLE1.sdd) / 10 - 100 * 0.014) / 0.176;
  assert.ok(Math.abs(noScan.iterations_for_paper_ratio! - want) < 1e-9 && want > 30 && want < 35, `${want}`);
});

test('the paper-time page: paper, sdd-bench and PyTorch columns, both charts render in headless chromium', async () => {
  const c = (k: number) =>
    timeColumn(
      { hqs_s: 212 * k, iter_s: 0.176 * k, sdd_infer_s: 0.014 * k, sdedit_infer_s: 1.1 * k, ddib_infer_s: 3.5 * k },
      4000,
    );
  const result = {
    world: 'paper-random',
    backend: 'webgpu',
    protocol: { m: 100, n: 10, iterations: 4000, hqs_images: 200, hqs_images_measured: 8, iteration_blocks: 5 },
    sdd_bench: c(2),
    pytorch: { device: 'NVIDIA H200', fp32: c(1), fp16: c(0.4) },
  };
  const out = tmp('sdd-paper-time-');
  const path = await writePage(result, 'fixture.json', out);
  const html = readFileSync(path, 'utf-8');
  for (const col of ['paper', 'sdd-bench (webgpu)', 'PyTorch fp32', 'PyTorch fp16'])
    assert.ok(html.includes(`<th>${col}</th>`), col);
  // The paper's figures are text cells (as printed in the paper), which the page wraps in span.t.
  assert.ok(
    html.includes('<td><span class="t">2215</span></td>') && html.includes('<td><span class="t">148.67</span></td>'),
    "the paper's column",
  );
  assert.ok(readFileSync(join(out, 'paper-time', 'charts', 'totals.vl.json'), 'utf-8').includes('"log"'));
  const dom = dumpDom(`file://${path}`);
  assert.match(dom, /data-errors="0"/);
  assert.match(dom, /data-rendered="2"/);
});
