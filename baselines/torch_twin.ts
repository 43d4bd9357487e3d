/**
 * What the diffusion baselines tell their PyTorch twins (python/sdd_torch/methods/{sdedit,ddib,
 * diffae}.py) beside the params, resolved here so the TypeScript stays the spec: each DDIM step
 * as ddimSampleTensor / ddimInvertTensor (src/diffusion/pipelines/sample.ts) take it (the model's
 * timestep and the update's coefficients, computed by the same DdimScheduler in float64), and
 * editTimed's batch layout (src/methods/editing.ts: one warm-up image, then batches of `batch`).
 */
import type { DdimScheduler } from '../src/diffusion/schedulers/ddim.js';
import type { TwinInputs } from '../src/methods/types.js';
import type { World } from '../src/world/types.js';
import type { SourceMode } from '../src/methods/editing.js';

/**
 * One step z′ = cx·z + ce·ε̂(z, t) (+ cn·noise when cn > 0, fresh normals from the batch's Rng):
 * `alpha` is ᾱ where ε̂ is predicted, `alpha_to` ᾱ where the step lands (for the record).
 */
interface StepPlan {
  t: number;
  alpha: number;
  alpha_to: number;
  cx: number;
  ce: number;
  cn: number;
}

/** ddimSampleTensor's loop over `timesteps` at η (SDEdit: the last k; the others: all of them). */
export function sampleSteps(s: DdimScheduler, eta = s.cfg.eta, timesteps = s.timesteps): StepPlan[] {
  const stride = strideOf(s);
  return timesteps.map((t) => ({
    t,
    alpha: s.alphaAt(t),
    alpha_to: s.alphaAt(t - stride),
    ...s.stepCoefficients(t, eta),
  }));
}

/** ddimInvertTensor's loop: ε̂ at the lower timestep max(0, t − Δ), the η = 0 update up to t. */
export function invertSteps(s: DdimScheduler): StepPlan[] {
  const stride = strideOf(s);
  return s.inversionTimesteps().map((t) => ({
    t: Math.max(0, t - stride),
    alpha: s.alphaAt(t - stride),
    alpha_to: s.alphaAt(t),
    ...s.invertCoefficients(t - stride),
    cn: 0,
  }));
}

/** Δ = ⌊T/N⌋, the stride of every DDIM step whatever the spacing (ddim.ts). */
function strideOf(s: DdimScheduler): number {
  return Math.floor(s.cfg.trainTimesteps / s.cfg.steps);
}

/**
 * A text condition of textEps (./common.ts): which of the engine block's token ids (`text`,
 * `source_text`), under CFG with the empty prompt's at `guidance` (1: the conditional model alone).
 */
export function textPlan(tokens: 'text' | 'source_text', guidance: number): { tokens: string; guidance: number } {
  return { tokens, guidance };
}

/** The diffusion latent of one image, [h, w, c] (NHWC, as the twin's noise is laid out). */
export function latentOf(world: World): number[] {
  return [...world.diffusion.latentShape];
}

/**
 * Every baseline's contract inputs: the m sources as the tfjs run edits them; no training data, no
 * harness noise (the twins re-draw the TS Rng).
 */
export function baselineInputs(p: { eval_images: number; sources: SourceMode }): TwinInputs {
  return { eval_images: p.eval_images, sources: p.sources, train_images: 0, noise: {} };
}
