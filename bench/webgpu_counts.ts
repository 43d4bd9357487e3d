/**
 * Host-side cost counts of the webgpu backend per step (issue #32): compute dispatches, queue
 * submits, compute passes, host → GPU uploads, GPU buffers created (device allocations; readback
 * and upload staging included) and reused from the pool, per bench U-Net train step
 * (bench/common.ts withUnetTrainStep, as bench/gpu.ts) and per DDIM step with CFG (the toyfaces
 * ε-model, cfgEps + ddimSampleTensor), for each WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE in BATCH_SIZES
 * (tfjs's default is 15; it is read at every dispatch), before and after #32's upload path, fused
 * Adam and kernel fusions (GroupNorm+SiLU in one kernel, conv/matmul with their bias; VARIANTS).
 * The counts come from the bounded pool's wrappers (src/backend/webgpu_pool.ts) and are the same
 * on any adapter for the same shapes: a software one (lavapipe) gives a real GPU's counts.
 * Host ms are reported too; on a software adapter they include the "GPU" work run on the CPU cores,
 * so they are noise for a real GPU's host cost and nothing is gated on them.
 * Then Conv2DBackpropInput/Filter alone, ours against tfjs's (bench/webgpu_conv_backprop.ts).
 *   node --import tsx bench/webgpu_counts.ts [--unet-batch 2] [--unet-size 32] [--ddim-images 4] [--conv-batch 8]
 * → bench/results/webgpu-counts.json (machine, backend and adapter in the record).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, poolCounters, shutdownBackend, type PoolCounters } from '../src/backend/index.js';
import { setUploadPath } from '../src/backend/webgpu_pool.js';
import { FUSED_ADAM, hasFusedAdam, registerFusedAdam } from '../src/backend/kernels/adam.js';
import { setWebGpuFusions } from '../src/backend/kernels/group_norm_silu.js';
import { setConvBackprop, type ConvBackpropKernels } from '../src/backend/kernels/webgpu_conv_backprop.js';
import { DDIM_SD, DdimScheduler } from '../src/diffusion/schedulers/ddim.js';
import { cfgEps, ddimSampleTensor, repeatCondition } from '../src/diffusion/pipelines/sample.js';
import { tfSeed } from '../src/util/rng.js';
import { loadToyfacesWorld } from '../datasets/toyfaces/world_models.js';
import { argValue, withUnetTrainStep, writeResult } from './common.js';
import { convBackpropTimes } from './webgpu_conv_backprop.js';

/** tfjs's WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE values measured (15 is its default) … */
const BATCH_SIZES = [1, 15, 64, 1024];
/**
 * … "before" #32's speed-ups (tfjs's own upload path: a staging buffer, a copy and a new compute
 * pass per upload; DeviceAdam as ~13 elementwise ops per variable; GroupNorm, SiLU and bias adds
 * as separate ops) and "after" (the pool's queue.writeBuffer uploads; the fused Adam kernel, 3
 * dispatches per variable; GroupNorm+SiLU one kernel forward and four backward, the bias in the
 * conv/matmul; our tiled Conv2DBackpropFilter/Input, kernels/webgpu_conv_backprop.ts, where "before"
 * has tfjs's naive ones); and, at batch 15, after with the kernel fusions off (what they alone
 * save), after with WEBGPU_CPU_FORWARD off (tfjs computes small tensors on the host, then uploads
 * them) and after with tfjs's conv backprops (what ours alone change).
 */
interface Variant {
  batch: number;
  cpuForward: boolean;
  speedups: 'before' | 'after';
  fusions: boolean;
  convBackprop: ConvBackpropKernels;
}
const VARIANTS: Variant[] = [
  ...BATCH_SIZES.map(
    (batch): Variant => ({ batch, cpuForward: true, speedups: 'before', fusions: false, convBackprop: 'tfjs' }),
  ),
  ...BATCH_SIZES.map(
    (batch): Variant => ({ batch, cpuForward: true, speedups: 'after', fusions: true, convBackprop: 'ours' }),
  ),
  { batch: 15, cpuForward: true, speedups: 'after', fusions: false, convBackprop: 'ours' },
  { batch: 15, cpuForward: false, speedups: 'after', fusions: true, convBackprop: 'ours' },
  { batch: 15, cpuForward: true, speedups: 'after', fusions: true, convBackprop: 'tfjs' },
];

async function applyVariant(v: Variant): Promise<void> {
  tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', v.batch);
  tf.env().set('WEBGPU_CPU_FORWARD', v.cpuForward);
  setUploadPath(v.speedups === 'after' ? 'writeBuffer' : 'tfjs');
  setWebGpuFusions(v.fusions);
  setConvBackprop(v.convBackprop);
  if (v.speedups === 'after') await registerFusedAdam('webgpu');
  else if (hasFusedAdam('webgpu')) tf.unregisterKernel(FUSED_ADAM, 'webgpu');
}
const MEASURED_STEPS = 2;

/** The pool counters a step is measured by (besides the created buffers' kinds, below). */
const COUNTED = [
  'dispatches',
  'submits',
  'passes',
  'uploads',
  'created',
  'created_bytes',
  'reused',
  'evicted',
] as const;
type Counted = Pick<PoolCounters, (typeof COUNTED)[number]> & { created_upload: number; created_storage: number };

interface PerStep extends Counted {
  host_ms: number;
  /** host ms / dispatches: on a real GPU, the JS + N-API cost of one kernel launch. */
  ms_per_dispatch: number;
}

function snapshot(): Counted {
  const c = poolCounters();
  if (!c) throw new Error('webgpu pool counters missing: is the webgpu backend active with its pool installed?');
  const counted = Object.fromEntries(COUNTED.map((k) => [k, c[k]])) as Pick<PoolCounters, (typeof COUNTED)[number]>;
  return { ...counted, created_upload: c.created_by_kind.upload, created_storage: c.created_by_kind.storage };
}

/** Runs `step` once to warm up (shader compiles, pool fill), then MEASURED_STEPS times; per-step means. */
async function measure(step: () => Promise<void>, perCall = 1): Promise<PerStep> {
  await step();
  const a = snapshot();
  const t0 = performance.now();
  for (let i = 0; i < MEASURED_STEPS; i++) await step();
  const ms = (performance.now() - t0) / (MEASURED_STEPS * perCall);
  const b = snapshot();
  const per = (k: keyof Counted) => (b[k] - a[k]) / (MEASURED_STEPS * perCall);
  const keys = Object.keys(a) as Array<keyof Counted>;
  const out = { ...(Object.fromEntries(keys.map((k) => [k, per(k)])) as Counted), host_ms: ms, ms_per_dispatch: 0 };
  out.ms_per_dispatch = out.dispatches ? ms / out.dispatches : 0;
  return out;
}

async function unetCounts(batch: number, size: number): Promise<PerStep> {
  return withUnetTrainStep(batch, size, (step) => measure(step));
}

const DDIM_STEPS = 4;

async function ddimCounts(images: number): Promise<PerStep> {
  const world = loadToyfacesWorld();
  const cond = repeatCondition(await world.diffusion.textCondition([world.prompts[0].text]), images);
  const uncond = repeatCondition(await world.diffusion.textCondition(['']), images);
  const guided = cfgEps(world.diffusion.eps, cond, uncond, 7.5);
  const scheduler = new DdimScheduler({ ...DDIM_SD, steps: DDIM_STEPS, eta: 0 });
  const shape = [images, ...world.diffusion.latentShape] as [number, number, number, number];
  const zT = tf.randomNormal(shape, 0, 1, 'float32', tfSeed(0)) as tf.Tensor4D;
  try {
    // Per DDIM step: one loop of DDIM_STEPS steps and its one read, divided by DDIM_STEPS.
    return await measure(async () => {
      const z = ddimSampleTensor(guided.eps, scheduler, zT, shape);
      await z.data();
      z.dispose();
    }, DDIM_STEPS);
  } finally {
    guided.dispose();
    zT.dispose();
    world.dispose();
  }
}

const info = await initBackend('webgpu');
const unetBatch = Number(argValue('unet-batch', '2'));
const unetSize = Number(argValue('unet-size', '32'));
const ddimImages = Number(argValue('ddim-images', '4'));
const rows: Array<{
  deferred_submit_batch_size: number;
  cpu_forward: boolean;
  speedups: string;
  fusions: boolean;
  conv_backprop: string;
  unet_train_step: PerStep;
  ddim_step: PerStep;
}> = [];
const fmt = (r: PerStep) =>
  `${r.dispatches.toFixed(0)} dispatches, ${r.submits.toFixed(1)} submits, ${r.passes.toFixed(1)} passes, ${r.uploads.toFixed(0)} uploads, ${r.created.toFixed(1)} buffers created (${r.created_upload.toFixed(1)} upload staging, ${r.created_storage.toFixed(1)} storage; ${(r.created_bytes / 1024).toFixed(0)} KiB), ${r.reused.toFixed(0)} reused; ${r.host_ms.toFixed(0)} ms (${r.ms_per_dispatch.toFixed(3)} ms/dispatch)`;
try {
  for (const variant of VARIANTS) {
    const { batch, cpuForward, speedups, fusions, convBackprop } = variant;
    await applyVariant(variant);
    const unet = await unetCounts(unetBatch, unetSize);
    const ddim = await ddimCounts(ddimImages);
    rows.push({
      deferred_submit_batch_size: batch,
      cpu_forward: cpuForward,
      speedups,
      fusions,
      conv_backprop: convBackprop,
      unet_train_step: unet,
      ddim_step: ddim,
    });
    console.log(
      `WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=${batch} WEBGPU_CPU_FORWARD=${cpuForward} ${speedups} #32's uploads and Adam, fusions ${fusions ? 'on' : 'off'}, conv backprop ${convBackprop}\n  U-Net train step B${unetBatch} ${unetSize}²: ${fmt(unet)}\n  DDIM step, CFG, ${ddimImages} latents: ${fmt(ddim)}`,
    );
  }
  const convBatch = Number(argValue('conv-batch', '8'));
  console.log(`Conv2D backprops alone, batch ${convBatch} (median ms per call, read back):`);
  const convTimes = await convBackpropTimes(convBatch);
  const c = poolCounters()!;
  const path = writeResult('webgpu-counts', {
    adapter: info.adapter,
    pool: {
      budget_bytes: c.budget_bytes,
      staging_budget_bytes: c.staging_budget_bytes,
      peak_bytes_allocated: c.peak_bytes_allocated,
    },
    unet: { batch: unetBatch, size: unetSize },
    ddim: { images: ddimImages, guidance: 7.5, steps_per_loop: DDIM_STEPS },
    measured_steps: MEASURED_STEPS,
    rows,
    conv_backprop: { batch: convBatch, times: convTimes },
  });
  console.log(`→ ${path}`);
} finally {
  shutdownBackend();
}
