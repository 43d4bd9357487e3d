/**
 * bench/gpu.ts's PyTorch side and its output: the CUDA runs of the same workloads
 * (bench/unet_torch.py, bench/gpu_torch.py), and the rows that put each tfjs workload beside its
 * PyTorch twin (a ratio only where both measured the same network).
 */
import { join } from 'node:path';
import { execa } from 'execa';
import { LOG_EVERY } from '../src/sdd/distill.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { med } from './common.js';
import type { ddimCfg, sddIteration, Sizes } from './gpu_workloads.js';

export const NO_TORCH = 'PyTorch/CUDA not available on this host';

export interface Row {
  id: string;
  what: string;
  tfjs_ms: number;
  /** Per-iteration milliseconds of every timed iteration (warm-up excluded). */
  samples: number[];
  torch_ms: number | null;
  torch_samples: number[] | null;
  /** tfjs / PyTorch medians (> 1: tfjs slower). */
  ratio: number | null;
  notes: string[];
  [k: string]: unknown;
}

/** What the tfjs workloads measured, by workload (U-Net runs by "size/batch"). */
export interface TfjsTimes {
  unet: Map<string, { ms: number[]; params: number }>;
  ddim: Awaited<ReturnType<typeof ddimCfg>>;
  sdd: Awaited<ReturnType<typeof sddIteration>>;
  featnet: number[];
}

type TorchLine = Record<string, unknown> & { ms: number[] };

/** PyTorch's JSON lines (U-Net train steps; DDIM and featnet), its failures, and the python that ran. */
export interface TorchRuns {
  py: string | null;
  unet: TorchLine[];
  infer: TorchLine[];
  notes: string[];
}

// ---- PyTorch ----

/** A python3 whose torch sees a CUDA device, or null. */
async function cudaTorchPython(): Promise<string | null> {
  for (const py of ['python3', '/usr/bin/python3']) {
    const r = await execa(py, ['-c', 'import torch; assert torch.cuda.is_available()'], {
      reject: false,
      timeout: 120_000,
    });
    if (r.exitCode === 0) return py;
  }
  return null;
}

async function torchLines(
  py: string,
  script: string,
  scriptArgs: string[],
): Promise<{ lines: TorchLine[]; error: string | null }> {
  const r = await execa(py, [join(PROJECT_ROOT, 'bench', script), ...scriptArgs], {
    reject: false,
    timeout: 1_800_000,
  });
  const lines = String(r.stdout)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as TorchLine);
  const error =
    r.exitCode === 0
      ? null
      : `bench/${script} failed (exit ${r.exitCode}): ${String(r.stderr).trim().split('\n').slice(-3).join(' | ')}`;
  return { lines, error };
}

/** `--device cuda` and then every setting as a flag, in order: { 'ddim-steps': 50 } → --ddim-steps 50. */
const flags = (o: Record<string, string | number>): string[] => [
  '--device',
  'cuda',
  ...Object.entries(o).flatMap(([k, v]) => [`--${k}`, String(v)]),
];

/** The PyTorch CUDA twins at the same sizes, or nothing (py null) on a host without CUDA torch. */
export async function runTorch(sz: Sizes): Promise<TorchRuns> {
  const py = await cudaTorchPython();
  if (!py) return { py, unet: [], infer: [], notes: [] };
  process.stdout.write('  PyTorch CUDA (bench/unet_torch.py, bench/gpu_torch.py)… ');
  const t0 = performance.now();
  const { unet: n, ddim: d, featnet: f } = sz;
  const u = await torchLines(
    py,
    'unet_torch.py',
    flags({ sizes: n.sizes.join(','), batches: n.batches.join(','), steps: n.steps, warmup: n.warmup }),
  );
  const g1 = await torchLines(
    py,
    'gpu_torch.py',
    flags({
      workloads: 'ddim',
      images: d.images,
      'ddim-steps': d.steps,
      guidance: d.guidance,
      repeats: d.repeats,
      warmup: d.warmup,
    }),
  );
  const g2 = await torchLines(
    py,
    'gpu_torch.py',
    flags({
      workloads: 'featnet',
      'feat-images': f.images,
      'feat-batch': f.batch,
      repeats: f.repeats,
      warmup: f.warmup,
    }),
  );
  const notes = [u.error, g1.error, g2.error].filter((e): e is string => e !== null);
  console.log(`${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return { py, unet: u.lines, infer: [...g1.lines, ...g2.lines], notes };
}

// ---- output ----

function row(
  id: string,
  what: string,
  tfjs: number[],
  torch: number[] | null,
  notes: string[],
  extra: Record<string, unknown> = {},
): Row {
  const t = med(tfjs);
  const r = torch && torch.length ? med(torch) : null;
  return {
    id,
    what,
    tfjs_ms: t,
    samples: tfjs,
    torch_ms: r,
    torch_samples: torch,
    ratio: r ? t / r : null,
    notes,
    ...extra,
  };
}

/** Every workload's row, in the order the table prints them. */
export function comparisonRows(sz: Sizes, tfjs: TfjsTimes, torch: TorchRuns): Row[] {
  const missing = (what: string) => (torch.py ? (torch.notes[0] ?? `no ${what} line from PyTorch`) : NO_TORCH);
  return [
    ...unetRows(sz, tfjs, torch, missing),
    ddimRow(sz, tfjs, torch, missing),
    sddRow(tfjs),
    featnetRow(sz, tfjs, torch, missing),
  ];
}

function unetRows(sz: Sizes, tfjs: TfjsTimes, torch: TorchRuns, missing: (what: string) => string): Row[] {
  const rows: Row[] = [];
  for (const size of sz.unet.sizes) {
    for (const batch of sz.unet.batches) {
      const t = tfjs.unet.get(`${size}/${batch}`)!;
      const ref = torch.unet.find((l) => l.size === size && l.batch === batch);
      const notes = [
        'forward + backward + createAdam step (DeviceAdam) + read of the loss; bench/unet_torch.py: the same network, Adam',
      ];
      if (!ref) notes.push(missing('U-Net'));
      const r = row(`unet B${batch} ${size}²`, 'bench U-Net train step', t.ms, ref?.ms ?? null, notes, {
        size,
        batch,
        params: t.params,
      });
      if (ref && ref.params !== t.params) {
        // Not the same network: keep both timings, but no ratio.
        const msg = `parameter counts differ (tfjs ${t.params}, PyTorch ${String(ref.params)}): no ratio`;
        console.log(`WARNING: U-Net B${batch} ${size}²: ${msg}`);
        notes.push(msg);
        r.ratio = null;
      }
      rows.push(r);
    }
  }
  return rows;
}

function ddimRow(sz: Sizes, tfjs: TfjsTimes, torch: TorchRuns, missing: (what: string) => string): Row {
  const ref = torch.infer.find((l) => l.workload === 'ddim');
  return row(
    `ddim-${sz.ddim.steps} cfg ×${sz.ddim.images}`,
    `DDIM-${sz.ddim.steps} sampling of ${sz.ddim.images} latents, CFG ${sz.ddim.guidance} (one doubled-batch ε call per step), one read at the end, no decode`,
    tfjs.ddim.ms,
    ref?.ms ?? null,
    [ref ? String(ref.notes) : missing('ddim')],
    {
      images: sz.ddim.images,
      steps: sz.ddim.steps,
      guidance: sz.ddim.guidance,
      prompt: tfjs.ddim.prompt,
      torch_params: ref?.params ?? null,
    },
  );
}

function sddRow(tfjs: TfjsTimes): Row {
  return row(
    'sdd iteration',
    'one SDD distillation iteration (src/sdd/distill.ts distill, experiments/table1/sdd.yaml settings)',
    tfjs.sdd.ms,
    null,
    [
      `distill run for ${String(tfjs.sdd.settings.iterations)} iterations, timed between its awaited loss reads (every ${LOG_EVERY} iterations); each sample = one window / ${LOG_EVERY}; the first window (identity of the training codes, text condition, shader compiles) is warm-up`,
      'torch: null — no PyTorch twin of the generator + VAE encoder + ε-model + identity net + mapper chain; a partial one would be another workload',
    ],
    { settings: tfjs.sdd.settings },
  );
}

function featnetRow(sz: Sizes, tfjs: TfjsTimes, torch: TorchRuns, missing: (what: string) => string): Row {
  const ref = torch.infer.find((l) => l.workload === 'featnet');
  return row(
    `featnet ×${sz.featnet.images}`,
    `FID features of ${sz.featnet.images} images in batches of ${sz.featnet.batch}, one read at the end`,
    tfjs.featnet,
    ref?.ms ?? null,
    [ref ? String(ref.notes) : missing('featnet')],
    {
      images: sz.featnet.images,
      batch: sz.featnet.batch,
      torch_params: ref?.params ?? null,
    },
  );
}

export function table(rows: Row[]): string {
  const f = (v: number | null, d = 1) => (v === null ? '—' : v >= 100 ? v.toFixed(0) : v.toFixed(d));
  const head = ['workload', 'tfjs ms', 'min–max', 'n', 'torch ms', 'tfjs/torch'];
  const body = rows.map((r) => [
    r.id,
    f(r.tfjs_ms),
    `${f(Math.min(...r.samples))}–${f(Math.max(...r.samples))}`,
    String(r.samples.length),
    f(r.torch_ms),
    r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (c: string[]) => c.map((v, i) => (i === 0 ? v.padEnd(w[i]) : v.padStart(w[i]))).join('  ');
  return [line(head), w.map((n) => '─'.repeat(n)).join('  '), ...body.map(line)].join('\n');
}

/** The `torch` entry of bench/results/gpu.json. */
export function torchSummary(torch: TorchRuns): Record<string, unknown> {
  if (!torch.py) return { available: false, note: NO_TORCH };
  return {
    python: torch.py,
    versions: [...new Set([...torch.unet, ...torch.infer].map((l) => l.torch))],
    gpu: torch.infer[0]?.gpu ?? torch.unet[0]?.gpu ?? null,
    tf32: false,
    notes: torch.notes,
  };
}
