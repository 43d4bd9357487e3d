/**
 * Noise schedules (diffusers' naming): the β_t of the forward process and ᾱ_t = Π(1 − β_s), in
 * float64. Stable Diffusion's is "scaled_linear": β = linspace(√0.00085, √0.012, T)², T = 1000.
 * `rescaleZeroSnr` (scheduler_config.json's rescale_betas_zero_snr; Lin et al. 2024, Algorithm 1)
 * shifts and scales √ᾱ so that ᾱ_{T−1} = 0 exactly while ᾱ_0 keeps its value.
 */
export type BetaSchedule = 'scaled_linear' | 'linear';

export interface ScheduleConfig {
  trainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  schedule: BetaSchedule;
  /** Zero terminal SNR (absent: false). */
  rescaleZeroSnr?: boolean;
}

export const SD_SCHEDULE: ScheduleConfig = {
  trainTimesteps: 1000,
  betaStart: 0.00085,
  betaEnd: 0.012,
  schedule: 'scaled_linear',
};

/** The β_t of the training schedule as trained: rescaled to zero terminal SNR when the config says so. */
export function betas(cfg: ScheduleConfig): Float64Array {
  const T = cfg.trainTimesteps;
  const out = new Float64Array(T);
  const [a, b] =
    cfg.schedule === 'scaled_linear'
      ? [Math.sqrt(cfg.betaStart), Math.sqrt(cfg.betaEnd)]
      : [cfg.betaStart, cfg.betaEnd];
  for (let t = 0; t < T; t++) {
    const v = T === 1 ? a : a + ((b - a) * t) / (T - 1);
    out[t] = cfg.schedule === 'scaled_linear' ? v * v : v;
  }
  return cfg.rescaleZeroSnr ? rescaleZeroTerminalSnr(out) : out;
}

/**
 * β with zero terminal SNR: √ᾱ ← (√ᾱ − √ᾱ_{T−1})·√ᾱ_0/(√ᾱ_0 − √ᾱ_{T−1}), then back to β through
 * the ratios of consecutive ᾱ (the last β becomes 1). Same order of operations as diffusers, so
 * ᾱ recomputed from these β is the rescaled ᾱ up to rounding.
 */
function rescaleZeroTerminalSnr(betas: Float64Array): Float64Array {
  const sqrtBar = cumprod(betas).map(Math.sqrt);
  const [first, last] = [sqrtBar[0], sqrtBar[sqrtBar.length - 1]];
  const bar = sqrtBar.map((s) => ((s - last) * (first / (first - last))) ** 2);
  return bar.map((v, t) => 1 - (t === 0 ? v : v / bar[t - 1]));
}

function cumprod(betas: Float64Array): Float64Array {
  const out = new Float64Array(betas.length);
  let acc = 1;
  for (let t = 0; t < betas.length; t++) out[t] = acc *= 1 - betas[t];
  return out;
}

export function alphasCumprod(cfg: ScheduleConfig): Float64Array {
  return cumprod(betas(cfg));
}
