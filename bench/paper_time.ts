/**
 * The paper's time column (Table 1, Eq. 13–15) from runs of experiments/paper/{sdd,sdedit,ddib}.yaml
 * --profile time (`make paper-time` runs them first), beside the paper's numbers and, when given,
 * PyTorch's (bench/paper_time_torch.py on the same GPU):
 *
 *   τ_SDD,train = τ_HQS (the released scan: 200 images × 19 t) + 4000 × τ_iter
 *     τ_HQS   the run's scan time over K images × 200 / K (a scan costs the same per image: one
 *             guidance gradient per image and t; only the image count is extrapolated)
 *     τ_iter  median over blocks of 10 iterations of the run's distillation (its metrics.jsonl
 *             rows are written when each block's losses are read, i.e. at a device sync), the
 *             first block (warm-up) left out; only the iteration count is extrapolated
 *   τ_SDD,infer, τ_SDEdit,infer, τ_DDIB,infer   the runs' own τ_infer (per image, warm-up excluded)
 *
 * Totals at m = 100 images × n = 10 prompts, the break-even m of SDD against SDEdit, and the
 * iteration count at which SDD would be the paper's 14.9× faster than SDEdit.
 *
 *   node --import tsx bench/paper_time.ts --store DIR [--torch FILE] [--iterations 4000] [--hqs-images 200]
 *
 * Writes bench/results/paper_time-<world>-<backend>.json.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { breakEven, totalTime, type MethodTimes } from '../src/metrics/total_time.js';
import { LOG_EVERY } from '../src/sdd/distill.js';
import { argValue, med, writeResult } from './common.js';

/** Table 1's time column, seconds at m = 100, n = 10 (the paper's own measurement). */
export const PAPER_TABLE1 = { sdedit: 2215, ddib: 3502, diffae: 5658, sdd: 148.67 };
const [M, N] = [100, 10];

interface Run {
  method: string;
  metrics: Record<string, unknown>;
  env: Record<string, unknown>;
  dir: string;
}

function runsIn(store: string): Run[] {
  return readdirSync(store)
    .filter((d) => existsSync(join(store, d, 'result.json')))
    .map((d) => {
      const dir = join(store, d);
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf-8')) as { method: { name: string } };
      const result = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf-8')) as { metrics: Record<string, unknown> };
      const env = JSON.parse(readFileSync(join(dir, 'env.json'), 'utf-8')) as Record<string, unknown>;
      return { method: config.method.name, metrics: result.metrics, env, dir };
    });
}

/**
 * Median seconds per iteration from a run's metrics.jsonl: the rows of a block of LOG_EVERY steps
 * are written together when the block's losses are read (a device sync), stamped from its first
 * row on; block k's time is the difference of consecutive blocks' first stamps. The first block
 * (warm-up: shader compilation, first allocations) ends at the first stamp, so no difference holds it.
 */
export function iterationMedian(metricsJsonl: string): { seconds: number; blocks: number } {
  const rows = metricsJsonl.trim().split('\n').map((l) => JSON.parse(l) as { step: number; time: number });
  const starts = rows.filter((r) => r.step % LOG_EVERY === 0);
  const per: number[] = [];
  for (let i = 1; i < starts.length; i++) per.push((starts[i].time - starts[i - 1].time) / (starts[i].step - starts[i - 1].step));
  if (per.length < 2) throw new Error('too few iterations for a median: run at least 3 blocks of 10');
  return { seconds: med(per), blocks: per.length };
}

export interface TimeColumn {
  tau: { hqs_s: number; iter_s: number; sdd_train_s: number; sdd_infer_s: number; sdedit_infer_s: number; ddib_infer_s: number };
  total_s: { sdd: number; sdedit: number; ddib: number };
  sdd_vs_sdedit: number;
  break_even_m: number | null;
  iterations_for_paper_ratio: number | null;
}

/** Eq. 13–15 from the components (the same arithmetic for tfjs and PyTorch). */
export function timeColumn(c: { hqs_s: number; iter_s: number; sdd_infer_s: number; sdedit_infer_s: number; ddib_infer_s: number }, iterations: number): TimeColumn {
  const sddTrain = c.hqs_s + iterations * c.iter_s;
  const sdd: MethodTimes = { train_s: sddTrain, infer_s: c.sdd_infer_s };
  const sdedit: MethodTimes = { train_s: 0, infer_s: c.sdedit_infer_s };
  const total = { sdd: totalTime(sdd, M, N), sdedit: totalTime(sdedit, M, N), ddib: totalTime({ train_s: 0, infer_s: c.ddib_infer_s }, M, N) };
  // n(τ_HQS + I·τ_iter) + m·n·τ_infer = T_SDEdit / ratio  →  I
  const target = total.sdedit / (PAPER_TABLE1.sdedit / PAPER_TABLE1.sdd);
  const iters = (target / N - M * c.sdd_infer_s - c.hqs_s) / c.iter_s;
  return {
    tau: { ...c, sdd_train_s: sddTrain },
    total_s: total,
    sdd_vs_sdedit: total.sdedit / total.sdd,
    break_even_m: breakEven(sdd, sdedit),
    iterations_for_paper_ratio: iters > 0 ? iters : null,
  };
}

function main(): void {
  const store = argValue('store', '');
  if (!store) throw new Error('usage: bench/paper_time.ts --store DIR [--torch FILE]');
  const iterations = Number(argValue('iterations', '4000'));
  const hqsImages = Number(argValue('hqs-images', '200'));
  const runs = runsIn(store);
  const of = (name: string) => {
    const r = runs.find((x) => x.method === name);
    if (!r) throw new Error(`${store}: no finished ${name} run (make paper-time runs experiments/paper/{sdd,sdedit,ddib}.yaml --profile time first)`);
    return r;
  };
  const [sdd, sdedit, ddib] = [of('sdd'), of('sdedit'), of('ddib')];
  const k = Number((JSON.parse(readFileSync(join(sdd.dir, 'config.json'), 'utf-8')) as { method: { params: { hqs: { images: number } } } }).method.params.hqs.images);
  const iter = iterationMedian(readFileSync(join(sdd.dir, 'metrics.jsonl'), 'utf-8'));
  const ours = timeColumn(
    {
      hqs_s: ((sdd.metrics.hqs_s as number) * hqsImages) / k,
      iter_s: iter.seconds,
      sdd_infer_s: sdd.metrics.tau_infer_s as number,
      sdedit_infer_s: sdedit.metrics.tau_infer_s as number,
      ddib_infer_s: ddib.metrics.tau_infer_s as number,
    },
    iterations,
  );
  const torchFile = argValue('torch', '');
  const torch = torchFile ? (JSON.parse(readFileSync(torchFile, 'utf-8')) as Record<string, { hqs_s: number; iter_s: number; sdd_infer_s: number; sdedit_infer_s: number; ddib_infer_s: number }> & { device?: string }) : null;
  const torchCols: Record<string, TimeColumn> = {};
  for (const [precision, c] of Object.entries(torch ?? {})) if (typeof c === 'object' && c && 'iter_s' in c) torchCols[precision] = timeColumn(c, iterations);
  const world = String(sdd.metrics.world);
  const info = sdd.env.backend as { choice: string; adapter: unknown };
  const backend = info.choice;
  const fmt = (v: number | null) => (v === null ? 'never' : v >= 100 ? v.toFixed(0) : v.toPrecision(3));
  const cols: Array<[string, TimeColumn | null]> = [['sdd-bench', ours], ...Object.entries(torchCols).map(([p, c]) => [`PyTorch ${p}`, c] as [string, TimeColumn])];
  const line = (label: string, paper: string, f: (c: TimeColumn) => number | null) => `${label.padEnd(26)}${paper.padStart(10)}${cols.map(([, c]) => fmt(c ? f(c) : null).padStart(16)).join('')}\n`;
  process.stdout.write(`world ${world}, backend ${backend}; HQS over ${k} images → ${hqsImages}; τ_iter median of ${iter.blocks} blocks of 10 → ${iterations} iterations\n`);
  process.stdout.write(`${''.padEnd(26)}${'paper'.padStart(10)}${cols.map(([n]) => n.padStart(16)).join('')}\n`);
  process.stdout.write(line('τ_HQS (s)', '-', (c) => c.tau.hqs_s));
  process.stdout.write(line('τ_iter (s)', '-', (c) => c.tau.iter_s));
  process.stdout.write(line('τ_SDD,train (s)', '-', (c) => c.tau.sdd_train_s));
  process.stdout.write(line('τ_SDD,infer (s/image)', '-', (c) => c.tau.sdd_infer_s));
  process.stdout.write(line('τ_SDEdit,infer (s/image)', '-', (c) => c.tau.sdedit_infer_s));
  process.stdout.write(line('τ_DDIB,infer (s/image)', '-', (c) => c.tau.ddib_infer_s));
  process.stdout.write(line('SDEdit total (s)', String(PAPER_TABLE1.sdedit), (c) => c.total_s.sdedit));
  process.stdout.write(line('DDIB total (s)', String(PAPER_TABLE1.ddib), (c) => c.total_s.ddib));
  process.stdout.write(line('SDD total (s)', String(PAPER_TABLE1.sdd), (c) => c.total_s.sdd));
  process.stdout.write(line('SDEdit / SDD', (PAPER_TABLE1.sdedit / PAPER_TABLE1.sdd).toFixed(1), (c) => c.sdd_vs_sdedit));
  process.stdout.write(line('break-even m', '-', (c) => c.break_even_m));
  process.stdout.write(line('iterations for 14.9×', '-', (c) => c.iterations_for_paper_ratio));
  const path = writeResult(`paper_time-${world}-${backend}`, {
    world,
    backend,
    adapter: info.adapter ?? null,
    protocol: { m: M, n: N, iterations, hqs_images: hqsImages, hqs_images_measured: k, iteration_blocks: iter.blocks },
    paper: PAPER_TABLE1,
    sdd_bench: ours,
    pytorch: torch ? { device: torch.device ?? null, ...torchCols } : null,
    runs: { sdd: sdd.dir, sdedit: sdedit.dir, ddib: ddib.dir },
  });
  process.stdout.write(`wrote ${path}\n`);
}

// Run as a script (also as dist/bench/paper_time.mjs), not when a test imports the arithmetic.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
