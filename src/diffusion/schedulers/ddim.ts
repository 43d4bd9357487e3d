/**
 * DDIM (Song et al.) as diffusers' DDIMScheduler computes it, on plain arrays so any model (tfjs
 * tensor read back, or a test's oracle) can drive it. The denoising loop itself lives in each
 * method, written out (diffusers' "simple over easy").
 *   timesteps: descending, by the config's spacing (diffusers' names, Lin et al. 2024 Table 2):
 *              leading   t_i = i·⌊T/N⌋ + offset (SD v1: offset 1 → 981 … 1 at N = 50);
 *              trailing  round(T − i·T/N) − 1 (→ 999 … 19), offset ignored;
 *              linspace  round(linspace(0, T − 1, N)) reversed, offset ignored;
 *   step:      x_{t−Δ} = √ᾱ_prev·x̂₀ + √(1 − ᾱ_prev − σ²)·ε̂ + σ·z, Δ = ⌊T/N⌋ whatever the spacing
 *              (as diffusers: with linspace the step lands between sampled timesteps),
 *              σ = η·√((1 − ᾱ_prev)/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_prev);
 *   inversion: the η = 0 step run from t to t + Δ (deterministic), for DDIB and DiffAE.
 * ᾱ before the first step is ᾱ_0 (SD's set_alpha_to_one = False) unless `alphaOneAtStart`.
 * With zero terminal SNR ᾱ_{T−1} = 0: x̂₀ cannot be told from ε̂ there (x_T is pure noise), so
 * only the v-form step (stepV) takes that timestep; the ε-form refuses it in one line.
 */
import { UserError } from '../../errors.js';
import { alphasCumprod, SD_SCHEDULE, type ScheduleConfig } from './schedule.js';

/** A sample, a prediction or noise, flattened: any array of numbers (a tensor's data, a test's oracle). */
type Values = ArrayLike<number>;

/** scheduler_config.json's timestep_spacing. */
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';

export interface DdimConfig extends ScheduleConfig {
  steps: number;
  eta: number;
  offset: number;
  alphaOneAtStart: boolean;
  /** Absent: leading (DDIMScheduler's default). */
  spacing?: TimestepSpacing;
}

export const DDIM_SD: DdimConfig = { ...SD_SCHEDULE, steps: 50, eta: 0, offset: 1, alphaOneAtStart: false };

/**
 * A model's DDIM setting apart from what a method chooses (steps, η): its training schedule,
 * steps_offset and set_alpha_to_one, as a checkpoint's scheduler_config.json gives them. Worlds
 * hand it to methods, which must not assume Stable Diffusion's.
 */
export type SchedulerConfig = Omit<DdimConfig, 'steps' | 'eta'>;

export const SD_SCHEDULER: SchedulerConfig = {
  ...SD_SCHEDULE,
  rescaleZeroSnr: false,
  offset: 1,
  alphaOneAtStart: false,
  spacing: 'leading',
};

/** The DDIM scheduler of a model's config with a method's steps and η. */
export function ddimFor(model: SchedulerConfig, steps: number, eta = 0): DdimScheduler {
  return new DdimScheduler({ ...model, steps, eta });
}

export class DdimScheduler {
  readonly alphas: Float64Array;
  readonly timesteps: number[];

  constructor(readonly cfg: DdimConfig) {
    if (!Number.isInteger(cfg.steps) || cfg.steps < 1 || cfg.steps > cfg.trainTimesteps) {
      throw new RangeError(`DDIM steps must be 1..${cfg.trainTimesteps}, got ${cfg.steps}`);
    }
    this.alphas = alphasCumprod(cfg);
    this.timesteps = ddimTimesteps(cfg.trainTimesteps, cfg.steps, cfg.spacing ?? 'leading', cfg.offset).filter(
      (t) => t < cfg.trainTimesteps,
    );
  }

  private get stepRatio(): number {
    return Math.floor(this.cfg.trainTimesteps / this.cfg.steps);
  }

  alphaAt(t: number): number {
    return t >= 0 ? this.alphas[t] : this.cfg.alphaOneAtStart ? 1 : this.alphas[0];
  }

  /** σ_t of the step from t to t − Δ at this η. */
  sigma(t: number, eta = this.cfg.eta): number {
    const a = this.alphaAt(t);
    const ap = this.alphaAt(t - this.stepRatio);
    return eta * Math.sqrt((1 - ap) / (1 - a)) * Math.sqrt(1 - a / ap);
  }

  /** ᾱ_t for an ε-form step: refused where it is 0 (zero terminal SNR), where x̂₀ = (x − ε̂)/0. */
  private epsAlphaAt(t: number): number {
    const a = this.alphaAt(t);
    if (a === 0)
      throw new UserError(
        `DDIM: ᾱ_${t} = 0 (rescale_betas_zero_snr): x̂₀ is undefined from ε̂ at t = ${t}; only a step from the model's v (DdimScheduler.stepV) is defined there, and the ε-based samplers cannot take it`,
      );
    return a;
  }

  /** What the ε- and v-steps share: ᾱ at the target, σ_t, and the coefficient of ε̂'s direction. */
  private stepTerms(t: number, eta: number, noise?: Values): { ap: number; s: number; dirCoef: number } {
    const ap = this.alphaAt(t - this.stepRatio);
    const s = this.sigma(t, eta);
    if (s > 0 && !noise) throw new Error('DDIM step with η > 0 needs a noise sample');
    return { ap, s, dirCoef: Math.sqrt(Math.max(0, 1 - ap - s * s)) };
  }

  /** One reverse step; `noise` (standard normal, same length) is needed when η > 0. */
  step(eps: Values, t: number, x: Values, noise?: Values, eta = this.cfg.eta): Float64Array {
    const a = this.epsAlphaAt(t);
    const { ap, s, dirCoef } = this.stepTerms(t, eta, noise);
    const out = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const x0 = (x[i] - Math.sqrt(1 - a) * eps[i]) / Math.sqrt(a);
      out[i] = Math.sqrt(ap) * x0 + dirCoef * eps[i] + (s > 0 ? s * noise![i] : 0);
    }
    return out;
  }

  /**
   * The same step from a v-prediction (x̂₀ = √ᾱ·x − √(1 − ᾱ)·v, ε̂ = √ᾱ·v + √(1 − ᾱ)·x), defined
   * at ᾱ_t = 0 too; x̂₀ is returned with the next sample, as diffusers' step returns it.
   */
  stepV(v: Values, t: number, x: Values, noise?: Values, eta = this.cfg.eta): { prev: Float64Array; x0: Float64Array } {
    const a = this.alphaAt(t);
    const { ap, s, dirCoef } = this.stepTerms(t, eta, noise);
    const prev = new Float64Array(x.length);
    const x0 = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      x0[i] = Math.sqrt(a) * x[i] - Math.sqrt(1 - a) * v[i];
      const eps = Math.sqrt(a) * v[i] + Math.sqrt(1 - a) * x[i];
      prev[i] = Math.sqrt(ap) * x0[i] + dirCoef * eps + (s > 0 ? s * noise![i] : 0);
    }
    return { prev, x0 };
  }

  /** Deterministic inversion step x_t → x_{t+Δ} with ε̂ predicted at t (the η = 0 update, reversed). */
  invertStep(eps: Values, t: number, x: Values): Float64Array {
    const a = this.alphaAt(t);
    const an = this.alphaAt(t + this.stepRatio);
    const out = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const x0 = (x[i] - Math.sqrt(1 - a) * eps[i]) / Math.sqrt(a);
      out[i] = Math.sqrt(an) * x0 + Math.sqrt(1 - an) * eps[i];
    }
    return out;
  }

  /**
   * The same two updates as linear maps on device tensors: x' = cx·x + ce·ε (+ cn·z). The
   * coefficients are computed here in float64, so a loop that keeps x on the GPU differs from
   * the host loop only by float32 rounding of the elementwise update.
   */
  stepCoefficients(t: number, eta = this.cfg.eta): { cx: number; ce: number; cn: number } {
    const a = this.epsAlphaAt(t);
    const ap = this.alphaAt(t - this.stepRatio);
    const s = this.sigma(t, eta);
    const dir = Math.sqrt(Math.max(0, 1 - ap - s * s));
    return { cx: Math.sqrt(ap) / Math.sqrt(a), ce: dir - (Math.sqrt(ap) * Math.sqrt(1 - a)) / Math.sqrt(a), cn: s };
  }

  /** Coefficients of invertStep (x_t → x_{t+Δ}, ε̂ at t). */
  invertCoefficients(t: number): { cx: number; ce: number } {
    const a = this.alphaAt(t);
    const an = this.alphaAt(t + this.stepRatio);
    return {
      cx: Math.sqrt(an) / Math.sqrt(a),
      ce: Math.sqrt(1 - an) - (Math.sqrt(an) * Math.sqrt(1 - a)) / Math.sqrt(a),
    };
  }

  /** Forward noising q(x_t | x_0): √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε. */
  addNoise(x0: Values, eps: Values, t: number): Float64Array {
    const a = this.alphas[t];
    return Float64Array.from(x0, (v, i) => Math.sqrt(a) * v + Math.sqrt(1 - a) * eps[i]);
  }

  /** The inversion timesteps, ascending: from the first sampling step up to the last. */
  inversionTimesteps(): number[] {
    return [...this.timesteps].reverse();
  }
}

/** numpy's round (half to even), which diffusers' timesteps go through. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The N sampling timesteps of DDIMScheduler.set_timesteps, descending, computed as its numpy code
 * does (float steps, then round half to even), so every N gives the same integers.
 */
function ddimTimesteps(T: number, N: number, spacing: TimestepSpacing, offset: number): number[] {
  if (spacing === 'leading') {
    const ratio = Math.floor(T / N);
    return Array.from({ length: N }, (_, i) => (N - 1 - i) * ratio + offset);
  }
  if (spacing === 'trailing') {
    // np.arange(T, 0, −T/N): ⌈−T/(−T/N)⌉ values T + i·δ with numpy's δ = (T − T/N) − T, then −1.
    const step = -T / N;
    const delta = T + step - T;
    return Array.from({ length: Math.ceil(-T / step) }, (_, i) => roundHalfEven(T + i * delta) - 1);
  }
  // np.linspace(0, T − 1, N): i·((T − 1)/(N − 1)), the last set to T − 1 exactly.
  if (N === 1) return [0];
  const step = (T - 1) / (N - 1);
  return Array.from({ length: N }, (_, i) => roundHalfEven(i === N - 1 ? T - 1 : i * step)).reverse();
}

/**
 * DDPM ancestral sampling is DDIM with every training step and η = 1: σ_t² then equals the DDPM
 * posterior variance β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t)·β_t (tested), and the mean is the same.
 */
export function ddpmScheduler(cfg: ScheduleConfig = SD_SCHEDULE): DdimScheduler {
  return new DdimScheduler({ ...cfg, steps: cfg.trainTimesteps, eta: 1, offset: 0, alphaOneAtStart: true });
}
