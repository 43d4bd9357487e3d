/**
 * SDD's PyTorch twin (python/sdd_torch/methods/sdd.py) as the torch engine drives it: the HQS scan
 * phase first (unless S needs none), then the distillation with S taken from that scan. The plans
 * carry what the twin computes nothing of itself (S, ᾱ_t and w(t) in float64, the mapper block);
 * the harness draws the Gaussian streams.
 */
import { z } from 'zod';
import type { World } from '../world/types.js';
import { guidanceWeight } from '../sdd/guidance.js';
import type { HqsScan, Selection } from '../sdd/hqs.js';
import { dimsOf, editPlan, mapperInitShape, mapperPlan } from '../sdd/twin.js';
import type { ResultValue, TorchTwin, TwinInputs } from './types.js';
import { parseOut } from './contract.js';
import { mapperSettings, type SddParams } from './sdd_params.js';
import { hqsCurve, scanImages, scanSteps, selectionFor, selectionRecord } from './sdd_hqs.js';

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

/**
 * The distillation's plan given the twin's scan (whose seconds result() charges to τ_train, as the
 * tfjs run charges its own).
 */
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
    selection: selectionRecord(selection, found.scan ? selectionFor(p, found.scan).mean_hqs : null),
    hqs: found.scan ? { seconds: found.scan.seconds, curve: hqsCurve(p, found.scan) } : null,
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
  return mapperInputs(p, world, 'hqs_', [scanSteps(p).length, scanImages(p)]);
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
  const timesteps = scanSteps(p);
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
 * The PyTorch twin. The plan carries S with ᾱ_t and w(t) per t, the mapper block, the base
 * branch's token key; the harness draws the Gaussian streams: `mapper_init`, `sds` [iterations,
 * batch, h, w, c] (ε; not for noise type zero) and `vae` (the VAE posterior draws; only with
 * vae_sample).
 */
export const sddTwin: TorchTwin<SddParams> = {
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
