/**
 * Noise schedules (diffusers' naming): the β_t of the forward process and ᾱ_t = Π(1 − β_s), in
 * float64. Stable Diffusion's is "scaled_linear": β = linspace(√0.00085, √0.012, T)², T = 1000.
 */
export type BetaSchedule = 'scaled_linear' | 'linear';

export interface ScheduleConfig {
  trainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  schedule: BetaSchedule;
}

export const SD_SCHEDULE: ScheduleConfig = { trainTimesteps: 1000, betaStart: 0.00085, betaEnd: 0.012, schedule: 'scaled_linear' };

export function betas(cfg: ScheduleConfig): Float64Array {
  const T = cfg.trainTimesteps;
  const out = new Float64Array(T);
  const [a, b] = cfg.schedule === 'scaled_linear' ? [Math.sqrt(cfg.betaStart), Math.sqrt(cfg.betaEnd)] : [cfg.betaStart, cfg.betaEnd];
  for (let t = 0; t < T; t++) {
    const v = T === 1 ? a : a + ((b - a) * t) / (T - 1);
    out[t] = cfg.schedule === 'scaled_linear' ? v * v : v;
  }
  return out;
}

export function alphasCumprod(cfg: ScheduleConfig): Float64Array {
  const b = betas(cfg);
  const out = new Float64Array(b.length);
  let acc = 1;
  for (let t = 0; t < b.length; t++) out[t] = acc *= 1 - b[t];
  return out;
}
