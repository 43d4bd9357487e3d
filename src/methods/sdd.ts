/**
 * SDD (Selective Diffusion Distillation): an HQS scan picks the timesteps S, a latent mapper is
 * distilled from the diffusion model's guidance at t ∈ S, and inference is one generator forward
 * per image. Every choice the paper leaves open is a parameter here, recorded with the run.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { writeFileAtomic } from '../util/atomic.js';
import { streamRng } from '../util/rng.js';
import { f32, writeSafetensors, type StTensor } from '../util/safetensors.js';
import { UserError } from '../errors.js';
import {
  editResult,
  editTimed,
  evaluationSources,
  promptOf,
  trainCodes,
  saveEditGrid,
  sourcesParam,
} from './editing.js';
import { loadWorld } from '../world/registry.js';
import { worldPart, type EditPromptSpec, type World } from '../world/types.js';
import { GUIDANCE_DEFAULTS, guidanceWeight, type GuidancePrompt } from '../sdd/guidance.js';
import { MAPPER_DEFAULTS, applyMapper } from '../sdd/mapper.js';
import {
  hqsScan,
  readHqs,
  scanTimesteps,
  selectTimesteps,
  type HqsReading,
  type HqsScan,
  type Selection,
} from '../sdd/hqs.js';
import { createMapper, distill, editLatents } from '../sdd/distill.js';
import { cachedHqs, type CachedScan } from '../sdd/hqs_cache.js';
import type { Method, MethodContext, ResultValue, TorchTwin, TwinInputs } from './types.js';
import { parseOut } from './contract.js';
import { dimsOf, editPlan, mapperInitShape, mapperPlan } from '../sdd/twin.js';
import { calibration } from '../sdd/timing.js';
import type { TimingRecord } from '../util/calibration.js';
import { hqsSection, selectionValues } from './sdd_report.js';

const guidance = z.strictObject({
  guidance_scale: z
    .number()
    .positive()
    .default(GUIDANCE_DEFAULTS.guidance_scale)
    .describe('CFG scale s of ε̂ (released code: 100)'),
  weighting: z.enum(['one_minus_alpha', 'one', 'sqrt_one_minus_alpha']).default('one_minus_alpha').describe('w(t)'),
  noise: z.enum(['random', 'zero']).default('random').describe("noise type ('zero': ε = 0)"),
  top_k: z
    .number()
    .int()
    .positive()
    .nullable()
    .default(null)
    .describe('keep the k largest |g| over the batch (null: all)'),
  negative: z
    .enum(['empty', 'source'])
    .default('empty')
    .describe("ε̂'s base branch: the empty prompt (released code) or the edit's source text"),
});

export const sddParams = z.strictObject({
  prompt: z.string().describe('edit prompt id of the world (e.g. hair_color:black->white)'),
  iterations: z.number().int().positive().default(300),
  batch: z.number().int().positive().default(2),
  lr: z.number().positive().default(5e-3).describe('AdamW learning rate'),
  weight_decay: z.number().nonnegative().default(2e-3),
  lambda_l2: z.number().nonnegative().default(10),
  lambda_id: z.number().nonnegative().default(1),
  vae_sample: z
    .boolean()
    .default(true)
    .describe('diffusion latents as a posterior sample (SD .sample()) rather than the mean'),
  train_images: z.number().int().positive().default(256).describe('training images, inverted to W+ once'),
  guidance: guidance.prefault({}),
  mapper: z
    .strictObject({
      coarse: z.boolean().default(false),
      medium: z.boolean().default(true),
      fine: z.boolean().default(true),
      step: z.number().positive().default(MAPPER_DEFAULTS.step).describe("w' = w + step·M(w)"),
      layers: z.number().int().positive().default(MAPPER_DEFAULTS.layers),
      lr_mul: z.number().positive().default(MAPPER_DEFAULTS.lr_mul),
      pixel_norm: z
        .enum(['across_levels', 'per_level'])
        .default(MAPPER_DEFAULTS.pixel_norm)
        .describe(
          "PixelNorm axis: across the group's levels per feature (released code) or each level's vector (method version 1)",
        ),
    })
    .prefault({}),
  selection: z
    .strictObject({
      strategy: z.enum(['random', 'threshold', 'largest']).default('threshold'),
      xi: z.number().optional().describe('threshold ξ, in the form of hqs.form'),
      range: z
        .tuple([z.number().int(), z.number().int()])
        .default([20, 980])
        .describe('random: t uniform over this range'),
    })
    .prefault({}),
  hqs: z
    .strictObject({
      images: z.number().int().positive().default(32).describe('K images averaged per timestep (released code: 200)'),
      from: z.number().int().min(0).default(50),
      to: z.number().int().max(999).default(950),
      stride: z.number().int().positive().default(50),
      form: z
        .enum(['released', 'eq11-12'], {
          error: "expected 'released' or 'eq11-12' (the [-1, 1] / [0, 1] choice is hqs.scale: paper | code)",
        })
        .default('released')
        .describe(
          'released: average N, H over images, then normalise over t, spatial softmax of the channel mean; eq11-12: per-image normalisation, softmax over H·W·C',
        ),
      scale: z
        .enum(['paper', 'code'])
        .default('paper')
        .describe('paper: N̄ − H̄ ∈ [−1, 1]; code: (N̄ + 1 − H̄)/2 ∈ [0, 1]'),
      top_k_per: z
        .enum(['image', 'batch'])
        .default('image')
        .describe('guidance top-k in the scan: per image (released scan) or over the K images'),
      mapper_step: z.number().default(0.1).describe('scan images are G(w + step·M(w)) with an untrained mapper'),
    })
    .prefault({}),
  sources: sourcesParam,
  eval_images: z.number().int().positive().default(100).describe('m: test images edited per prompt'),
  checkpoint_every: z.number().int().positive().default(100),
});
export type SddParams = z.infer<typeof sddParams>;

function mapperSettings(p: SddParams) {
  const { coarse, medium, fine, step, layers, lr_mul, pixel_norm } = p.mapper;
  return { levels: { coarse, medium, fine }, pixel_norm, step, layers, lr_mul };
}

/** The guidance texts of an edit prompt under the run's settings. */
export function guidancePrompt(p: SddParams, prompt: EditPromptSpec): GuidancePrompt {
  return { text: prompt.text, negative: p.guidance.negative === 'source' ? prompt.sourceText : '' };
}

/**
 * What an HQS scan depends on: its cache key. The form and scaling are left out on purpose: they
 * are readings of the same per-image statistics, so every form shares one scan.
 */
function hqsKey(world: World, p: SddParams, seed: number, prompt: GuidancePrompt, k: number): Record<string, unknown> {
  const { images: _k, form: _f, scale: _s, ...scan } = p.hqs;
  return {
    world: world.fingerprint,
    prompt,
    seed,
    images: k,
    train_images: p.train_images,
    scan,
    guidance: p.guidance,
    mapper: p.mapper,
    vae_sample: p.vae_sample,
  };
}

/** The HQS scan on K training latents with an untrained mapper (seeded), cached across runs. */
export async function runHqs(
  world: World,
  p: SddParams,
  seed: number,
  trainW: tf.Tensor3D,
  prompt: GuidancePrompt,
  onStep?: (i: number, total: number) => void,
): Promise<CachedScan> {
  const timesteps = scanTimesteps(p.hqs.from, p.hqs.to, p.hqs.stride);
  const k = Math.min(p.hqs.images, trainW.shape[0]);
  return cachedHqs(hqsKey(world, p, seed, prompt, k), async () => {
    const rng = streamRng(seed, 'hqs');
    const untrained = createMapper(world, mapperSettings(p), rng.int(2 ** 31));
    const style = worldPart(world, 'style', 'SDD');
    const images = tf.tidy(() =>
      style.generate(
        applyMapper(untrained, tf.slice(trainW, [0, 0, 0], [k, -1, -1]) as tf.Tensor3D, style, {
          ...mapperSettings(p),
          step: p.hqs.mapper_step,
        }),
      ),
    );
    untrained.dispose();
    try {
      const settings = { guidance: p.guidance, vae_sample: p.vae_sample, top_k_per: p.hqs.top_k_per };
      const cal = calibration('hqs', 'timestep', timesteps.length);
      return await hqsScan(world, images, prompt, timesteps, settings, rng, (i) => onStep?.(i, timesteps.length), cal);
    } finally {
      images.dispose();
    }
  });
}

/** The curve a run selects with: its form and scaling read from the scan. */
export function hqsOf(p: SddParams, scan: HqsScan): HqsReading {
  return readHqs(scan.stats, p.hqs.form, p.hqs.scale);
}

function selectionFor(p: SddParams, scan: HqsScan | null): Selection {
  if (p.selection.strategy === 'threshold' && p.selection.xi === undefined)
    throw new UserError('method.params.selection.xi: required for strategy threshold');
  if (!scan) return selectTimesteps([], [], { strategy: 'random', range: p.selection.range });
  try {
    return selectTimesteps(scan.timesteps, hqsOf(p, scan).hqs, p.selection);
  } catch (e) {
    throw new UserError(`method.params.selection.xi: ${(e as Error).message}`);
  }
}

async function saveArtifacts(
  ctx: MethodContext<SddParams>,
  mapper: ReturnType<typeof createMapper>,
  scan: HqsScan | null,
): Promise<void> {
  const t = new Map<string, StTensor>();
  for (const [name, v] of mapper.vars) t.set(name, f32(v.shape, ((await v.data()) as Float32Array).slice()));
  writeSafetensors(ctx.artifactPath('mapper.safetensors'), t, { method: 'sdd' });
  if (scan) {
    const r = hqsOf(ctx.params, scan);
    const rows = scan.timesteps.map((ts, i) => `${ts},${r.N[i]},${r.H[i]},${r.hqs[i]}`);
    writeFileAtomic(ctx.artifactPath('hqs.csv'), `t,N,H,hqs_${r.form}_${r.scale}\n${rows.join('\n')}\n`);
  }
}

/** K: the scan's images, the first of the n training codes. */
const scanImages = (p: SddParams) => Math.min(p.hqs.images, p.train_images);

/** What the guidance needs of timesteps ts: ᾱ_t and w(t), computed here (float64) for the twin. */
function guidanceAt(world: World, p: SddParams, ts: number[]): { alpha_bar: number[]; weight: number[] } {
  const alphaBar = ts.map((t) => world.diffusion.alphasCumprod[t]);
  return { alpha_bar: alphaBar, weight: alphaBar.map((a) => guidanceWeight(p.guidance.weighting, a)) };
}

const negativeKey = (p: SddParams) => (p.guidance.negative === 'source' ? 'source_text' : 'empty');

/**
 * The torch twin's selection: S for strategy random, else from the twin's own HQS scan (its
 * prephase; the engine runs it first and hands its hqs_scan.json over). A tfjs run's cached scan
 * is not taken: the scan is the engine's tensor work, like the distillation.
 */
function twinSelection(p: SddParams, scan: HqsScan | undefined): { selection: Selection; scan: HqsScan | null } {
  if (p.selection.strategy === 'random') return { selection: selectionFor(p, null), scan: scan ?? null };
  if (!scan)
    throw new Error(
      `SDD's selection '${p.selection.strategy}' needs the twin's HQS scan (its prephase) before the distillation's plan`,
    );
  return { selection: selectionFor(p, scan), scan };
}

const rows = z.array(z.array(z.number()));
const hqsScanSchema = z.object({
  timesteps: z.array(z.number().int()),
  stats: z.object({ N: rows, H: rows, H_full: rows }),
  images: z.number().int().positive(),
  seconds: z.number().min(0),
});

/** An hqs_scan.json of the twin's scan phase, checked (one line naming the key otherwise). */
function scanOf(prior: unknown): HqsScan | undefined {
  if (prior === undefined) return undefined;
  return parseOut(hqsScanSchema, prior, 'contract/out/hqs_scan.json') as HqsScan;
}

/** The distillation's plan given the twin's scan (whose seconds result() charges to τ_train, as the tfjs run charges its own). */
export function sddPlan(p: SddParams, world: World, run: { seed: number }, scan?: HqsScan): Record<string, unknown> {
  void run;
  const found = twinSelection(p, scan);
  const { selection } = found;
  return {
    phase: 'distill',
    timesteps: selection.timesteps,
    ...guidanceAt(world, p, selection.timesteps),
    negative: negativeKey(p),
    mapper: mapperPlan(mapperSettings(p), world),
    checkpoint_every: p.checkpoint_every,
    ...editPlan(p.eval_images),
    selection: {
      strategy: selection.strategy,
      size: selection.size,
      mean_hqs: found.scan ? selectionFor(p, found.scan).mean_hqs : null,
      timesteps: selection.size <= 50 ? selection.timesteps : [],
    },
    hqs: found.scan
      ? {
          seconds: found.scan.seconds,
          curve: { t: found.scan.timesteps, hqs: hqsOf(p, found.scan).hqs, form: p.hqs.form, scale: p.hqs.scale },
        }
      : null,
  };
}

/**
 * The twin's HQS scan phase (python/sdd_torch/methods/sdd.py with plan.phase "hqs"), for an engine
 * that runs it before the distillation: its contract inputs (the n training images or codes; the
 * untrained mapper's init `hqs_mapper_init`, ε and VAE draws `hqs_sds` / `hqs_vae` [T, K, h, w, c])
 * and plan (the scanned t with ᾱ_t and w(t), K, the mapper at hqs.mapper_step). It writes
 * contract/out/hqs_scan.json, an HqsScan for sddPlan. The engine runs it first (TorchTwin.prephase,
 * src/methods/engines/torch_run.ts).
 */
export function sddScanInputs(p: SddParams, world: World): TwinInputs {
  return mapperInputs(p, world, 'hqs_', [scanTimesteps(p.hqs.from, p.hqs.to, p.hqs.stride).length, scanImages(p)]);
}

/**
 * A twin's contract inputs with its Gaussian streams, `prefix`ed: the mapper's init, and per draw
 * (`perDraw` leading dimensions, then the latent) ε (not for noise type zero) and the VAE posterior
 * draws (only with vae_sample).
 */
function mapperInputs(p: SddParams, world: World, prefix: string, perDraw: number[]): TwinInputs {
  const dims = dimsOf(world);
  const shape = [...perDraw, ...dims.latent];
  return {
    eval_images: p.eval_images,
    sources: p.sources,
    train_images: p.train_images,
    noise: {
      [`${prefix}mapper_init`]: mapperInitShape(mapperSettings(p), dims),
      ...(p.guidance.noise === 'random' ? { [`${prefix}sds`]: shape } : {}),
      ...(p.vae_sample ? { [`${prefix}vae`]: shape } : {}),
    },
  };
}

export function sddScanPlan(p: SddParams, world: World): Record<string, unknown> {
  const timesteps = scanTimesteps(p.hqs.from, p.hqs.to, p.hqs.stride);
  return {
    phase: 'hqs',
    timesteps,
    ...guidanceAt(world, p, timesteps),
    images: scanImages(p),
    negative: negativeKey(p),
    mapper: mapperPlan({ ...mapperSettings(p), step: p.hqs.mapper_step }, world),
  };
}

/**
 * The PyTorch twin (python/sdd_torch/methods/sdd.py). The plan carries S with ᾱ_t and w(t) per
 * t, the mapper block, the base branch's token key; the harness draws the Gaussian streams:
 * `mapper_init`, `sds` [iterations, batch, h, w, c] (ε; not for noise type zero) and `vae` (the
 * VAE posterior draws; only with vae_sample).
 */
const sddTwin: TorchTwin<SddParams> = {
  inputs: (p, world) => mapperInputs(p, world, '', [p.iterations, p.batch]),
  // The HQS scan first, unless S needs none (strategy random).
  prephase: (p, world) =>
    p.selection.strategy === 'random'
      ? null
      : { name: 'hqs scan', inputs: sddScanInputs(p, world), plan: sddScanPlan(p, world), output: 'hqs_scan.json' },
  plan: (p, world, run, prior) => sddPlan(p, world, run, scanOf(prior)),
  result(_p, plan, times) {
    const hqs = plan.hqs as { seconds: number; curve: Record<string, ResultValue> } | null;
    // The scan is part of τ_train, as on tfjs (hqs_s says how much).
    const scanS = hqs?.seconds ?? 0;
    return {
      selection: plan.selection as Record<string, ResultValue>,
      hqs_s: scanS,
      tau_train_s: times.tau_train_s + scanS,
      ...(hqs ? { hqs_curve: hqs.curve } : {}),
    };
  },
};

export const sdd: Method<SddParams> = {
  name: 'sdd',
  // toyfaces needs no GPU; a paper-scale world adds one (gpus).
  resources: { cpus: 4, mem: '8G', time: '4:00:00' },
  // v2: PixelNorm across the group's levels (released code), HQS forms, τ_train charged for cached scans.
  // v3: τ calibrated under the device lock (#30: iterations × median iteration, likewise HQS and
  // τ_infer): the images are v2's, the times are not comparable, so no v2 run mixes into a table.
  version: 3,
  description: 'Selective Diffusion Distillation: HQS timestep selection + latent-mapper distillation (ICCV 2023).',
  params: sddParams,
  idNeutral: { 'guidance.negative': 'empty' },
  reportSections: [hqsSection],
  reportValues: selectionValues,
  torch: sddTwin,
  async run(ctx) {
    const p = ctx.params;
    const world = loadWorld(ctx.world);
    const prompt = promptOf(world, p.prompt);
    const guide = guidancePrompt(p, prompt);
    const ms = mapperSettings(p);
    const trainW = trainCodes(world, p.train_images);
    // τ_train is charged the scan's measured time even when a sibling run computed it (a cache
    // hit carries the original's seconds), so Eq. 13–15 do not depend on run order.
    const hqs =
      p.selection.strategy === 'random'
        ? null
        : await runHqs(world, p, ctx.seed, trainW, guide, (i, n) => ctx.progress(i, n, 'hqs scan'));
    const scan = hqs?.scan ?? null;
    const hqsSeconds = scan?.seconds ?? 0;
    if (hqs?.cached) ctx.log(`hqs scan: cache hit, charged its measured ${hqsSeconds.toFixed(1)} s`);
    const selection = selectionFor(p, scan);
    ctx.log(
      `S (${selection.strategy}): ${selection.size} timesteps${selection.size <= 20 ? ` [${selection.timesteps.join(', ')}]` : ''}, mean HQS ${selection.mean_hqs?.toFixed(3) ?? 'n/a'}`,
    );
    const mapper = createMapper(world, ms, streamRng(ctx.seed, 'mapper-init').int(2 ** 31));
    const saved = ctx.checkpoint.load();
    const resume = saved
      ? { step: saved.step, tensors: saved.tensors, adamStep: Number(saved.state.adam_step ?? 0) }
      : null;
    if (resume) ctx.log(`resuming at iteration ${resume.step}`);
    // Distillation time spent before a kill is carried in the checkpoint: a resumed run's τ_train
    // counts every iteration once, like an uninterrupted run's.
    const before = resume ? Number(saved?.state.distill_s ?? 0) : 0;
    // τ_train's distillation part is iterations × the median of calibration iterations under the
    // device lock; a run resumed after its calibration keeps the checkpoint's record.
    const cal = calibration('train', 'iteration', p.iterations, p.iterations - (resume?.step ?? 0));
    const savedTiming = saved?.state.train_timing as TimingRecord | undefined;
    if (resume && savedTiming) cal.restore(savedTiming);
    const t1 = performance.now();
    await distill(
      world,
      mapper,
      trainW,
      guide,
      selection.timesteps,
      { ...p, mapper: ms },
      (step) => streamRng(ctx.seed, `step${step}`),
      {
        resume,
        signal: ctx.signal,
        calibration: cal,
        checkpointEvery: p.checkpoint_every,
        onStep: (step, scalars) => {
          ctx.metric(step, scalars);
          ctx.progress(step + 1, p.iterations, 'distill');
        },
        checkpoint: (st) => {
          const tensors = new Map<string, { values: Float32Array; shape: number[] }>();
          for (const [k, v] of st.tensors) tensors.set(k, { values: v, shape: [v.length] });
          ctx.checkpoint.save(st.step, tensors, {
            adam_step: st.adamStep,
            distill_s: before + (performance.now() - t1) / 1000,
            ...(cal.done ? { train_timing: cal.record() } : {}),
          });
        },
      },
    ).finally(() => cal.release());
    const distillWall = before + (performance.now() - t1) / 1000;
    const distillSeconds = cal.total;
    // Random selection needs no scan to train, but Table 3 compares the mean HQS of every S: scan
    // after training (outside τ_train; usually a cache hit from a sibling run) and average the
    // curve over the range — its 50-step grid standing in for the uniform t.
    const reported =
      scan ??
      (await runHqs(world, p, ctx.seed, trainW, guide, (i, n) => ctx.progress(i, n, 'hqs scan (report only)'))).scan;
    const meanHqs = selectionFor(p, reported).mean_hqs;
    trainW.dispose();
    // Evaluation on m test images showing the source value, inverted once (as the paper's W+ codes
    // are). One generator forward per image: inversion is the input pipeline, outside τ_infer.
    const { images: originals, w } = await evaluationSources(world, prompt.id, p.eval_images, p.sources);
    const {
      edited,
      tauInfer,
      timing: inferTiming,
    } = await editTimed(world, originals, p.eval_images, (_x, offset) =>
      editLatents(world, mapper, tf.slice(w, [offset, 0, 0], [_x.shape[0], -1, -1]) as tf.Tensor3D, ms),
    );
    await saveArtifacts(ctx, mapper, reported);
    saveEditGrid(ctx, world, originals, edited);
    w.dispose();
    mapper.dispose();
    const result: Record<string, ResultValue> = {
      ...(await editResult(ctx, world, prompt, originals, edited, {
        tau_train_s: hqsSeconds + distillSeconds,
        tau_infer_s: tauInfer,
        timing: { train: cal.record(), infer: inferTiming, ...(scan?.timing ? { hqs: scan.timing } : {}) },
      })),
      hqs_s: hqsSeconds,
      hqs_cached: hqs?.cached ?? false,
      distill_s: distillSeconds,
      // The distillation's wall time, for comparison: it grows with whatever shares the device.
      distill_wall_s: distillWall,
      selection: {
        strategy: selection.strategy,
        size: selection.size,
        mean_hqs: meanHqs,
        timesteps: selection.size <= 50 ? selection.timesteps : [],
      },
      hqs_curve: { t: reported.timesteps, hqs: hqsOf(p, reported).hqs, form: p.hqs.form, scale: p.hqs.scale },
    };
    return result;
  },
};
