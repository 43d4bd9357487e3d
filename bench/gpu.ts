/**
 * make bench-gpu: tfjs on WebGPU (Dawn) against PyTorch CUDA (fp32, TF32 off) on the same GPU.
 * Every timed region ends with an awaited read of a small result, so the GPU work queued inside
 * it is finished inside it; medians over repeated iterations after warm-up.
 *   unet    the bench U-Net train step (bench/common.ts unetBenchLoss: src/nn/unet.ts + MSE, as
 *           bench/unet_step.ts) — forward, backward, createAdam's step (DeviceAdam), read of the
 *           loss — at B8 and B64, 32² and 64²; PyTorch: bench/unet_torch.py --device cuda.
 *   ddim    DDIM-50 sampling of 100 latents with CFG 7.5 by the toyfaces ε-model (cfgEps +
 *           ddimSampleTensor): z on the device throughout, one read at the end; the text condition
 *           (one prompt repeated, and "") is made before timing. No decode. PyTorch: the same loop
 *           over the torch engine's twin of the ε-model with the shipped weights (bench/gpu_torch.py).
 *   sdd     one SDD distillation iteration (src/sdd/distill.ts) at Table 1's settings
 *           (experiments/table1/sdd.yaml, first prompt): `distill` runs as is and is timed between
 *           its own loss reads, which it awaits every LOG_EVERY iterations; each sample is one
 *           such window / LOG_EVERY, the first window (setup, shader compiles) is warm-up.
 *           PyTorch: none (no twin of the generator/VAE/identity/mapper chain).
 *   featnet FID features (world.fid.features) of 1000 images in batches of 250, concatenated on
 *           the device, one read; images uploaded before timing. PyTorch: random-weight twin.
 * With no adapter: prints why and exits 0. With only a software adapter (lavapipe, SwiftShader):
 * skipped, unless --allow-software / SDD_BENCH_ALLOW_SOFTWARE=1, which runs the --smoke sizes.
 * --smoke: tiny batches, 2 steps, 5 DDIM steps, 20 images → bench/results/gpu-smoke.json (a real
 * run writes bench/results/gpu.json; a smoke run never overwrites it).
 */
import { join } from 'node:path';
import { execa } from 'execa';
import * as tf from '@tensorflow/tfjs-core';
import { deviceFault, shutdownBackend } from '../src/backend/index.js';
import { DDIM_SD, DdimScheduler } from '../src/diffusion/schedulers/ddim.js';
import { cfgEps, ddimSampleTensor, repeatCondition } from '../src/diffusion/pipelines/sample.js';
import { createMapper, distill, LOG_EVERY } from '../src/sdd/distill.js';
import { selectTimesteps } from '../src/sdd/hqs.js';
import { loadExperiment } from '../src/experiments/load.js';
import { expandExperiment } from '../src/experiments/expand.js';
import { registerBuiltinMethods } from '../src/methods/index.js';
import { guidancePrompt, type SddParams } from '../src/methods/sdd.js';
import { invert, promptOf } from '../src/methods/editing.js';
import { streamRng, tfSeed } from '../src/util/rng.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import type { World } from '../src/world/types.js';
import { loadToyfacesWorld } from '../datasets/toyfaces/world_models.js';
import { med, timeIt, webgpuForBench, withUnetTrainStep, writeResult } from './common.js';

const args = process.argv.slice(2);
const allowSoftware = args.includes('--allow-software') || process.env.SDD_BENCH_ALLOW_SOFTWARE === '1';
const SDD_EXPERIMENT = join(PROJECT_ROOT, 'experiments', 'table1', 'sdd.yaml');
const NO_TORCH = 'PyTorch/CUDA not available on this host';

interface Sizes {
  unet: { sizes: number[]; batches: number[]; steps: number; warmup: number };
  ddim: { images: number; steps: number; guidance: number; repeats: number; warmup: number };
  /** Timed windows of LOG_EVERY iterations after one warm-up window; trainImages overrides the yaml's. */
  sdd: { windows: number; trainImages: number | null };
  featnet: { images: number; batch: number; repeats: number; warmup: number };
}

const FULL: Sizes = {
  unet: { sizes: [32, 64], batches: [8, 64], steps: 10, warmup: 3 },
  ddim: { images: 100, steps: 50, guidance: 7.5, repeats: 5, warmup: 1 },
  sdd: { windows: 5, trainImages: null },
  featnet: { images: 1000, batch: 250, repeats: 10, warmup: 2 },
};

const SMOKE: Sizes = {
  unet: { sizes: [32], batches: [2], steps: 2, warmup: 1 },
  ddim: { images: 20, steps: 5, guidance: 7.5, repeats: 2, warmup: 1 },
  sdd: { windows: 2, trainImages: 32 },
  featnet: { images: 20, batch: 10, repeats: 2, warmup: 1 },
};

interface Row {
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

/** Runs long GPU work against a device fault (lost device, out of memory), which tfjs never surfaces. */
const guarded = <T>(p: Promise<T>): Promise<T> => Promise.race([p, deviceFault()]);

// ---- tfjs workloads ----

async function unetStep(size: number, batch: number, sz: Sizes['unet']): Promise<{ ms: number[]; params: number }> {
  return withUnetTrainStep(batch, size, async (step, params) => ({
    ms: await timeIt(step, sz.steps, sz.warmup),
    params,
  }));
}

async function ddimCfg(world: World, sz: Sizes['ddim']): Promise<{ ms: number[]; prompt: string }> {
  const text = world.prompts[0].text;
  const n = sz.images;
  const cond = repeatCondition(await world.diffusion.textCondition([text]), n);
  const uncond = repeatCondition(await world.diffusion.textCondition(['']), n);
  const guided = cfgEps(world.diffusion.eps, cond, uncond, sz.guidance);
  const scheduler = new DdimScheduler({ ...DDIM_SD, steps: sz.steps, eta: 0 });
  const shape = [n, ...world.diffusion.latentShape] as [number, number, number, number];
  const zT = tf.randomNormal(shape, 0, 1, 'float32', tfSeed(0)) as tf.Tensor4D;
  try {
    const ms = await timeIt(
      async () => {
        const z = ddimSampleTensor(guided.eps, scheduler, zT, shape);
        await z.data(); // the one read
        z.dispose();
      },
      sz.repeats,
      sz.warmup,
    );
    return { ms, prompt: text };
  } finally {
    guided.dispose();
    zT.dispose();
  }
}

/** Table 1's SDD settings: the first run of experiments/table1/sdd.yaml (its first prompt, seed 0). */
function sddSettings(): SddParams {
  registerBuiltinMethods(); // the experiment loader validates method params through the registry
  const { experiment } = loadExperiment(SDD_EXPERIMENT);
  return expandExperiment(experiment, SDD_EXPERIMENT)[0].config.method.params as SddParams;
}

async function sddIteration(
  world: World,
  sz: Sizes['sdd'],
): Promise<{ ms: number[]; settings: Record<string, unknown> }> {
  const p = sddSettings();
  const prompt = guidancePrompt(p, promptOf(world, p.prompt));
  // The same MapperSettings as src/methods/sdd.ts builds from its params.
  const { coarse, medium, fine, step, layers, lr_mul, pixel_norm } = p.mapper;
  const ms = { levels: { coarse, medium, fine }, pixel_norm, step, layers, lr_mul };
  const trainImages = sz.trainImages ?? p.train_images;
  const trainW = invert(world, world.trainImages(trainImages));
  // Which t ∈ S an iteration draws does not change its cost; S = every t of the random range.
  const timesteps = selectTimesteps([], [], { strategy: 'random', range: p.selection.range }).timesteps;
  const mapper = createMapper(world, ms, 0);
  const iterations = LOG_EVERY * (1 + sz.windows);
  const marks: number[] = [];
  try {
    await distill(
      world,
      mapper,
      trainW,
      prompt,
      timesteps,
      { ...p, mapper: ms, iterations },
      (s) => streamRng(0, `step${s}`),
      {
        // Called right after distill's awaited read of LOG_EVERY steps' losses: the GPU is idle
        // there, LOG_EVERY whole iterations (each one's AdamW step included) after the last mark.
        onStep: (s) => {
          if ((s + 1) % LOG_EVERY === 0) marks.push(performance.now());
        },
      },
    );
  } finally {
    mapper.dispose();
    trainW.dispose();
  }
  const samples = marks.slice(1).map((t, i) => (t - marks[i]) / LOG_EVERY);
  return {
    ms: samples,
    settings: {
      prompt: p.prompt,
      batch: p.batch,
      train_images: trainImages,
      iterations,
      log_every: LOG_EVERY,
      guidance_scale: p.guidance.guidance_scale,
      vae_sample: p.vae_sample,
      mapper: p.mapper,
    },
  };
}

async function featnet(world: World, sz: Sizes['featnet']): Promise<number[]> {
  const s = world.imageSize;
  const images = tf.tensor4d(world.trainImages(sz.images), [sz.images, s, s, 3]);
  try {
    return await timeIt(
      async () => {
        const parts: tf.Tensor2D[] = [];
        for (let i = 0; i < sz.images; i += sz.batch) {
          const k = Math.min(sz.batch, sz.images - i);
          parts.push(tf.tidy(() => world.fid.features(tf.slice(images, [i, 0, 0, 0], [k, -1, -1, -1]))));
        }
        const all = tf.concat(parts);
        await all.data(); // the one read
        tf.dispose([all, ...parts]);
      },
      sz.repeats,
      sz.warmup,
    );
  } finally {
    images.dispose();
  }
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

type TorchLine = Record<string, unknown> & { ms: number[] };

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

function table(rows: Row[]): string {
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

// ---- main ----

async function main(): Promise<void> {
  const gpu = await webgpuForBench('bench-gpu', allowSoftware);
  if (!gpu) return;
  const { info, software } = gpu;
  const adapter = info.adapter!;
  const name = `${adapter.vendor} ${adapter.architecture} ${adapter.device} ${adapter.description}`
    .replace(/\s+/g, ' ')
    .trim();
  const smoke = args.includes('--smoke') || software;
  const sz = smoke ? SMOKE : FULL;
  console.log(
    `bench-gpu on ${name}${software ? ' (software adapter)' : ''}${smoke ? ' — smoke sizes, numbers are not a benchmark' : ''}`,
  );

  const rows: Row[] = [];
  const tfjs = { unet: new Map<string, { ms: number[]; params: number }>() } as {
    unet: Map<string, { ms: number[]; params: number }>;
    ddim?: Awaited<ReturnType<typeof ddimCfg>>;
    sdd?: Awaited<ReturnType<typeof sddIteration>>;
    featnet?: number[];
  };
  /** One workload with its wall time (warm-up and compiles included) on the console. */
  const phase = async <T>(label: string, work: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    process.stdout.write(`  ${label}… `);
    const out = await guarded(work());
    console.log(`${((performance.now() - t0) / 1000).toFixed(0)} s`);
    return out;
  };
  for (const size of sz.unet.sizes) {
    for (const batch of sz.unet.batches) {
      tfjs.unet.set(
        `${size}/${batch}`,
        await phase(`tfjs U-Net train step B${batch} ${size}²`, () => unetStep(size, batch, sz.unet)),
      );
    }
  }
  const world = loadToyfacesWorld();
  try {
    tfjs.ddim = await phase(`tfjs DDIM-${sz.ddim.steps} with CFG ${sz.ddim.guidance}, ${sz.ddim.images} images`, () =>
      ddimCfg(world, sz.ddim),
    );
    tfjs.sdd = await phase(`tfjs SDD: ${LOG_EVERY * (1 + sz.sdd.windows)} iterations of distill`, () =>
      sddIteration(world, sz.sdd),
    );
    tfjs.featnet = await phase(`tfjs featnet features, ${sz.featnet.images} images`, () => featnet(world, sz.featnet));
  } finally {
    world.dispose();
  }
  // The GPU goes to PyTorch with nothing of ours left on it.
  shutdownBackend();

  const py = await cudaTorchPython();
  const torchNotes: string[] = [];
  let unetTorch: TorchLine[] = [];
  let inferTorch: TorchLine[] = [];
  if (py) {
    process.stdout.write('  PyTorch CUDA (bench/unet_torch.py, bench/gpu_torch.py)… ');
    const t0 = performance.now();
    const u = await torchLines(py, 'unet_torch.py', [
      '--device',
      'cuda',
      '--sizes',
      sz.unet.sizes.join(','),
      '--batches',
      sz.unet.batches.join(','),
      '--steps',
      String(sz.unet.steps),
      '--warmup',
      String(sz.unet.warmup),
    ]);
    const d = sz.ddim;
    const f = sz.featnet;
    const g1 = await torchLines(py, 'gpu_torch.py', [
      '--device',
      'cuda',
      '--workloads',
      'ddim',
      '--images',
      String(d.images),
      '--ddim-steps',
      String(d.steps),
      '--guidance',
      String(d.guidance),
      '--repeats',
      String(d.repeats),
      '--warmup',
      String(d.warmup),
    ]);
    const g2 = await torchLines(py, 'gpu_torch.py', [
      '--device',
      'cuda',
      '--workloads',
      'featnet',
      '--feat-images',
      String(f.images),
      '--feat-batch',
      String(f.batch),
      '--repeats',
      String(f.repeats),
      '--warmup',
      String(f.warmup),
    ]);
    [unetTorch, inferTorch] = [u.lines, [...g1.lines, ...g2.lines]];
    for (const e of [u.error, g1.error, g2.error]) if (e) torchNotes.push(e);
    console.log(`${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  const missing = (what: string) => (py ? (torchNotes[0] ?? `no ${what} line from PyTorch`) : NO_TORCH);

  for (const size of sz.unet.sizes) {
    for (const batch of sz.unet.batches) {
      const t = tfjs.unet.get(`${size}/${batch}`)!;
      const ref = unetTorch.find((l) => l.size === size && l.batch === batch);
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
  const ddimRef = inferTorch.find((l) => l.workload === 'ddim');
  rows.push(
    row(
      `ddim-${sz.ddim.steps} cfg ×${sz.ddim.images}`,
      `DDIM-${sz.ddim.steps} sampling of ${sz.ddim.images} latents, CFG ${sz.ddim.guidance} (one doubled-batch ε call per step), one read at the end, no decode`,
      tfjs.ddim.ms,
      ddimRef?.ms ?? null,
      [ddimRef ? String(ddimRef.notes) : missing('ddim')],
      {
        images: sz.ddim.images,
        steps: sz.ddim.steps,
        guidance: sz.ddim.guidance,
        prompt: tfjs.ddim.prompt,
        torch_params: ddimRef?.params ?? null,
      },
    ),
  );
  rows.push(
    row(
      'sdd iteration',
      'one SDD distillation iteration (src/sdd/distill.ts distill, experiments/table1/sdd.yaml settings)',
      tfjs.sdd.ms,
      null,
      [
        `distill run for ${String(tfjs.sdd.settings.iterations)} iterations, timed between its awaited loss reads (every ${LOG_EVERY} iterations); each sample = one window / ${LOG_EVERY}; the first window (identity of the training codes, text condition, shader compiles) is warm-up`,
        'torch: null — no PyTorch twin of the generator + VAE encoder + ε-model + identity net + mapper chain; a partial one would be another workload',
      ],
      { settings: tfjs.sdd.settings },
    ),
  );
  const featRef = inferTorch.find((l) => l.workload === 'featnet');
  rows.push(
    row(
      `featnet ×${sz.featnet.images}`,
      `FID features of ${sz.featnet.images} images in batches of ${sz.featnet.batch}, one read at the end`,
      tfjs.featnet,
      featRef?.ms ?? null,
      [featRef ? String(featRef.notes) : missing('featnet')],
      {
        images: sz.featnet.images,
        batch: sz.featnet.batch,
        torch_params: featRef?.params ?? null,
      },
    ),
  );

  console.log(
    `\n${table(rows)}\n(medians of per-iteration ms over the samples after warm-up; tfjs/torch > 1: tfjs slower)`,
  );
  for (const n of torchNotes) console.log(`note: ${n}`);
  if (!py) console.log(`note: ${NO_TORCH}`);
  const out = writeResult(smoke ? 'gpu-smoke' : 'gpu', {
    smoke,
    software_adapter: software,
    ...(smoke
      ? {
          note: software
            ? 'smoke sizes on a software adapter (--allow-software): tests the script, not a benchmark'
            : 'smoke sizes: tests the script, not a benchmark',
        }
      : {}),
    adapter,
    torch: py
      ? {
          python: py,
          versions: [...new Set([...unetTorch, ...inferTorch].map((l) => l.torch))],
          gpu: inferTorch[0]?.gpu ?? unetTorch[0]?.gpu ?? null,
          tf32: false,
          notes: torchNotes,
        }
      : { available: false, note: NO_TORCH },
    sizes: sz,
    workloads: rows,
  });
  console.log(`wrote ${out}`);
}

try {
  await main();
} finally {
  shutdownBackend(); // Dawn holds the event loop open until its device is released
}
