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
import { shutdownBackend } from '../src/backend/index.js';
import { LOG_EVERY } from '../src/sdd/distill.js';
import { loadToyfacesWorld } from '../datasets/toyfaces/world_models.js';
import { webgpuForBench, writeResult } from './common.js';
import { ddimCfg, featnet, guarded, sddIteration, unetStep, type Sizes } from './gpu_workloads.js';
import { comparisonRows, NO_TORCH, runTorch, table, torchSummary, type TfjsTimes } from './gpu_compare.js';

const args = process.argv.slice(2);
const allowSoftware = args.includes('--allow-software') || process.env.SDD_BENCH_ALLOW_SOFTWARE === '1';

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

/** One workload with its wall time (warm-up and compiles included) on the console. */
async function phase<T>(label: string, work: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  process.stdout.write(`  ${label}… `);
  const out = await guarded(work());
  console.log(`${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return out;
}

/** Every tfjs workload in turn, U-Net steps first (they build their own models). */
async function runTfjs(sz: Sizes): Promise<TfjsTimes> {
  const unet = new Map<string, { ms: number[]; params: number }>();
  for (const size of sz.unet.sizes) {
    for (const batch of sz.unet.batches) {
      unet.set(
        `${size}/${batch}`,
        await phase(`tfjs U-Net train step B${batch} ${size}²`, () => unetStep(size, batch, sz.unet)),
      );
    }
  }
  const world = loadToyfacesWorld();
  try {
    const ddim = await phase(`tfjs DDIM-${sz.ddim.steps} with CFG ${sz.ddim.guidance}, ${sz.ddim.images} images`, () =>
      ddimCfg(world, sz.ddim),
    );
    const sdd = await phase(`tfjs SDD: ${LOG_EVERY * (1 + sz.sdd.windows)} iterations of distill`, () =>
      sddIteration(world, sz.sdd),
    );
    const features = await phase(`tfjs featnet features, ${sz.featnet.images} images`, () =>
      featnet(world, sz.featnet),
    );
    return { unet, ddim, sdd, featnet: features };
  } finally {
    world.dispose();
  }
}

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
  const tfjs = await runTfjs(sz);
  // The GPU goes to PyTorch with nothing of ours left on it.
  shutdownBackend();
  const torch = await runTorch(sz);
  const rows = comparisonRows(sz, tfjs, torch);

  console.log(
    `\n${table(rows)}\n(medians of per-iteration ms over the samples after warm-up; tfjs/torch > 1: tfjs slower)`,
  );
  for (const n of torch.notes) console.log(`note: ${n}`);
  if (!torch.py) console.log(`note: ${NO_TORCH}`);
  const smokeNote = software
    ? 'smoke sizes on a software adapter (--allow-software): tests the script, not a benchmark'
    : 'smoke sizes: tests the script, not a benchmark';
  const out = writeResult(smoke ? 'gpu-smoke' : 'gpu', {
    smoke,
    software_adapter: software,
    ...(smoke ? { note: smokeNote } : {}),
    adapter,
    torch: torchSummary(torch),
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
