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
 * Writes bench/results/paper_time-<world>-<backend>.json and the report page reports/paper-time/
 * (the paper, sdd-bench and PyTorch side by side: a table of every τ component and total, the
 * totals per method as bars, total time against m per method); --no-report skips the page (the
 * bundle has no report renderer), --page FILE.json builds it later from a result file.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { breakEven, totalTime, type MethodTimes } from '../src/metrics/total_time.js';
import { LOG_EVERY } from '../src/sdd/distill.js';
import { copyVendor, figure, reportOut } from '../src/reports/build.js';
import { timeColumnBars, timeVsM, type SourceTotal } from '../src/reports/charts.js';
import { escapeHtml, page, tableHtml, figureHtml, type Table } from '../src/reports/html.js';
import { writeFileAtomic } from '../src/util/atomic.js';
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
      const result = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf-8')) as {
        metrics: Record<string, unknown>;
      };
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
  const rows = metricsJsonl
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; time: number });
  const starts = rows.filter((r) => r.step % LOG_EVERY === 0);
  const per: number[] = [];
  for (let i = 1; i < starts.length; i++)
    per.push((starts[i].time - starts[i - 1].time) / (starts[i].step - starts[i - 1].step));
  if (per.length < 2) throw new Error('too few iterations for a median: run at least 3 blocks of 10');
  return { seconds: med(per), blocks: per.length };
}

/**
 * What computed the run: the backend (tfjs), or the engine with its precision and device
 * ("torch fp32 on cuda:0 NVIDIA H200").
 */
function computedBy(r: Run, backend: string): string {
  const e = r.metrics.engine as { name?: string; precision?: string } | undefined;
  if (!e?.name) return backend;
  const device = (r.metrics.engine_env as { device?: string } | undefined)?.device;
  return `${e.name} ${e.precision ?? ''}${device ? ` on ${device}` : ''}`;
}

/**
 * τ_iter of an SDD run. On tfjs: the median over blocks of its metrics.jsonl stamps. On another
 * engine the curve reaches the run's file through the harness's polling (stamps ±0.2 s), so the
 * twin's own device-synchronised τ_train is used: (τ_train − τ_HQS) / iterations.
 */
function iterationOf(sdd: Run): { seconds: number; blocks: number } {
  if (!(sdd.metrics.engine as { name?: string } | undefined)?.name)
    return iterationMedian(readFileSync(join(sdd.dir, 'metrics.jsonl'), 'utf-8'));
  const config = JSON.parse(readFileSync(join(sdd.dir, 'config.json'), 'utf-8')) as {
    method: { params: { iterations: number } };
  };
  const train = (sdd.metrics.tau_train_s as number) - ((sdd.metrics.hqs_s as number | undefined) ?? 0);
  return { seconds: train / config.method.params.iterations, blocks: 0 };
}

export interface TimeColumn {
  tau: {
    hqs_s: number;
    iter_s: number;
    sdd_train_s: number;
    sdd_infer_s: number;
    sdedit_infer_s: number;
    ddib_infer_s: number;
  };
  total_s: { sdd: number; sdedit: number; ddib: number };
  sdd_vs_sdedit: number;
  break_even_m: number | null;
  iterations_for_paper_ratio: number | null;
}

/** Eq. 13–15 from the components (the same arithmetic for tfjs and PyTorch). */
export function timeColumn(
  c: { hqs_s: number; iter_s: number; sdd_infer_s: number; sdedit_infer_s: number; ddib_infer_s: number },
  iterations: number,
): TimeColumn {
  const sddTrain = c.hqs_s + iterations * c.iter_s;
  const sdd: MethodTimes = { train_s: sddTrain, infer_s: c.sdd_infer_s };
  const sdedit: MethodTimes = { train_s: 0, infer_s: c.sdedit_infer_s };
  const total = {
    sdd: totalTime(sdd, M, N),
    sdedit: totalTime(sdedit, M, N),
    ddib: totalTime({ train_s: 0, infer_s: c.ddib_infer_s }, M, N),
  };
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

export interface PaperTimeResult {
  world: string;
  backend: string;
  protocol: {
    m: number;
    n: number;
    iterations: number;
    hqs_images: number;
    hqs_images_measured: number;
    iteration_blocks: number;
  };
  sdd_bench: TimeColumn;
  pytorch: ({ device: string | null } & Record<string, TimeColumn | string | null>) | null;
}

/** The columns of a result: sdd-bench, then PyTorch per precision. */
function columnsOf(r: PaperTimeResult): Array<[string, TimeColumn]> {
  const torch = Object.entries(r.pytorch ?? {}).filter(
    (e): e is [string, TimeColumn] => typeof e[1] === 'object' && e[1] !== null && 'tau' in e[1],
  );
  return [
    [`sdd-bench (${r.backend})`, r.sdd_bench],
    ...torch.map(([p, c]): [string, TimeColumn] => [`PyTorch ${p}`, c]),
  ];
}

const ROWS: Array<[string, string, (c: TimeColumn) => number | null]> = [
  ['τ_HQS: scan, 200 images × 19 t (s)', '', (c) => c.tau.hqs_s],
  ['τ_iter: one SDD iteration, batch 2 (s)', '', (c) => c.tau.iter_s],
  ['τ_SDD,train per prompt (s)', '', (c) => c.tau.sdd_train_s],
  ['τ_SDD,infer per image (s)', '', (c) => c.tau.sdd_infer_s],
  ['τ_SDEdit,infer per image (s)', '', (c) => c.tau.sdedit_infer_s],
  ['τ_DDIB,infer per image (s)', '', (c) => c.tau.ddib_infer_s],
  ['SDEdit total (s)', String(PAPER_TABLE1.sdedit), (c) => c.total_s.sdedit],
  ['DDIB total (s)', String(PAPER_TABLE1.ddib), (c) => c.total_s.ddib],
  ['SDD total (s)', String(PAPER_TABLE1.sdd), (c) => c.total_s.sdd],
  ['SDEdit total / SDD total', (PAPER_TABLE1.sdedit / PAPER_TABLE1.sdd).toFixed(1), (c) => c.sdd_vs_sdedit],
  ['break-even m (SDD vs SDEdit)', '', (c) => c.break_even_m],
  ["SDD iterations for the paper's 14.9×", '', (c) => c.iterations_for_paper_ratio],
];

/** OUT/paper-time/index.html from a result (OUT: the reports folder). */
export async function writePage(r: PaperTimeResult, resultFile: string, out: string): Promise<string> {
  const dir = join(out, 'paper-time');
  copyVendor(out);
  const cols = columnsOf(r);
  const table: Table = {
    title: `Table 1's time column: paper, sdd-bench, PyTorch (m = ${r.protocol.m}, n = ${r.protocol.n}, ${r.protocol.iterations} SDD iterations)`,
    columns: ['', 'paper', ...cols.map(([n]) => n)],
    rows: ROWS.map(([label, paper, f]) => [label, paper || null, ...cols.map(([, c]) => f(c))]),
    note: `world ${r.world}; HQS measured on ${r.protocol.hqs_images_measured} images and scaled to ${r.protocol.hqs_images}; τ_iter the median of ${r.protocol.iteration_blocks} blocks of 10 iterations; break-even and iteration count "—": never.`,
  };
  const totals: SourceTotal[] = [
    ...(['sdedit', 'ddib', 'diffae', 'sdd'] as const).map((m) => ({
      source: 'paper',
      method: m,
      total: PAPER_TABLE1[m],
    })),
    ...cols.flatMap(([source, c]) =>
      (['sdedit', 'ddib', 'sdd'] as const).map((m) => ({ source, method: m, total: c.total_s[m] })),
    ),
  ];
  const figs = [
    await figure(
      dir,
      'totals',
      'Total time per method, by who measured',
      timeColumnBars(totals, 'total time (Eq. 13–14)'),
    ),
  ];
  const c = r.sdd_bench;
  const times = [
    { method: 'sdd', tau_train: c.tau.sdd_train_s, tau_infer: c.tau.sdd_infer_s },
    { method: 'sdedit', tau_train: 0, tau_infer: c.tau.sdedit_infer_s },
    { method: 'ddib', tau_train: 0, tau_infer: c.tau.ddib_infer_s },
  ];
  const be = c.break_even_m === null ? [] : [{ pair: 'sdd vs sdedit', m: c.break_even_m }];
  const maxM = Math.max(200, Math.ceil(1.5 * (c.break_even_m ?? 100)));
  figs.push(
    await figure(
      dir,
      'time',
      `sdd-bench (${r.backend}): total time against m (Eq. 13–15)`,
      timeVsM(times, r.protocol.n, maxM, be, 'total time'),
    ),
  );
  const body = [tableHtml(table), ...figs.map(figureHtml)].join('\n');
  const path = join(dir, 'index.html');
  writeFileAtomic(
    path,
    page({
      title: 'paper-time',
      vendor: '../vendor',
      body,
      provenance: `from ${escapeHtml(resultFile)}; generated ${escapeHtml(new Date().toISOString())}`,
    }),
  );
  return path;
}

/** The store's finished run of method `name`. */
function finishedRun(runs: Run[], store: string, name: string): Run {
  const r = runs.find((x) => x.method === name);
  if (!r)
    throw new Error(
      `${store}: no finished ${name} run (make paper-time runs experiments/paper/{sdd,sdedit,ddib}.yaml --profile time first)`,
    );
  return r;
}

/** How many images the SDD run's HQS scan used (its config's method.params.hqs.images). */
function hqsImagesOf(sdd: Run): number {
  const config = JSON.parse(readFileSync(join(sdd.dir, 'config.json'), 'utf-8')) as {
    method: { params: { hqs: { images: number } } };
  };
  return Number(config.method.params.hqs.images);
}

type TorchTimes = { hqs_s: number; iter_s: number; sdd_infer_s: number; sdedit_infer_s: number; ddib_infer_s: number };

/** The `pytorch` entry: bench/paper_time_torch's measurements (a file, by precision) as columns. */
function torchEntry(torchFile: string, iterations: number): PaperTimeResult['pytorch'] {
  if (!torchFile) return null;
  const torch = JSON.parse(readFileSync(torchFile, 'utf-8')) as Record<string, TorchTimes> & { device?: string };
  const torchCols: Record<string, TimeColumn> = {};
  for (const [precision, c] of Object.entries(torch))
    if (typeof c === 'object' && c && 'iter_s' in c) torchCols[precision] = timeColumn(c, iterations);
  return { device: torch.device ?? null, ...torchCols };
}

/** The measured rows beside the paper's, one column per source. */
function printTable(result: PaperTimeResult, k: number, iter: { blocks: number }): void {
  const { iterations, hqs_images: hqsImages } = result.protocol;
  const cols = columnsOf(result);
  const fmt = (v: number | null) => (v === null ? 'never' : v >= 100 ? v.toFixed(0) : v.toPrecision(3));
  process.stdout.write(
    `world ${result.world}, ${result.backend}; HQS over ${k} images → ${hqsImages}; τ_iter ${iter.blocks ? `median of ${iter.blocks} blocks of 10` : "the twin's τ_train / iterations"} → ${iterations} iterations\n`,
  );
  process.stdout.write(`${''.padEnd(40)}${'paper'.padStart(10)}${cols.map(([n]) => n.padStart(22)).join('')}\n`);
  for (const [label, paper, f] of ROWS)
    process.stdout.write(
      `${label.padEnd(40)}${(paper || '-').padStart(10)}${cols.map(([, c]) => fmt(f(c)).padStart(22)).join('')}\n`,
    );
}

/** The result of a store's three runs (and PyTorch's file, if given), scaled to the paper's protocol. */
function measure(store: string, iterations: number, hqsImages: number, torchFile: string) {
  const runs = runsIn(store);
  const [sdd, sdedit, ddib] = ['sdd', 'sdedit', 'ddib'].map((m) => finishedRun(runs, store, m));
  const k = hqsImagesOf(sdd);
  const iter = iterationOf(sdd);
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
  const info = sdd.env.backend as { choice: string; adapter: unknown };
  const result: PaperTimeResult & Record<string, unknown> = {
    world: String(sdd.metrics.world),
    backend: computedBy(sdd, info.choice),
    adapter: info.adapter ?? null,
    protocol: { m: M, n: N, iterations, hqs_images: hqsImages, hqs_images_measured: k, iteration_blocks: iter.blocks },
    paper: PAPER_TABLE1,
    sdd_bench: ours,
    pytorch: torchEntry(torchFile, iterations),
    runs: { sdd: sdd.dir, sdedit: sdedit.dir, ddib: ddib.dir },
  };
  return { result, k, iter, choice: info.choice };
}

async function main(): Promise<void> {
  const fromJson = argValue('page', '');
  if (fromJson) {
    const r = JSON.parse(readFileSync(fromJson, 'utf-8')) as PaperTimeResult;
    process.stdout.write(`report: ${await writePage(r, fromJson, reportOut(argValue('out', '') || undefined))}\n`);
    return;
  }
  const store = argValue('store', '');
  if (!store) throw new Error('usage: bench/paper_time.ts --store DIR [--torch FILE]');
  const iterations = Number(argValue('iterations', '4000'));
  const hqsImages = Number(argValue('hqs-images', '200'));
  const { result, k, iter, choice } = measure(store, iterations, hqsImages, argValue('torch', ''));
  printTable(result, k, iter);
  const path = writeResult(`paper_time-${result.world}-${choice}`, result);
  process.stdout.write(`wrote ${path}\n`);
  if (!process.argv.includes('--no-report'))
    process.stdout.write(`report: ${await writePage(result, path, reportOut(argValue('out', '') || undefined))}\n`);
}

// Run as a script (also as dist/bench/paper_time.mjs), not when a test imports the arithmetic.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
