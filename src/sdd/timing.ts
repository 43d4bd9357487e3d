/**
 * The calibrated τ of the editing methods (#30; protocol in ../util/calibration.ts): which device
 * a run times on, and how many units each phase calibrates on.
 */
import { activeBackend } from '../backend/index.js';
import { Calibration, type CalibrationClock } from '../util/calibration.js';

/**
 * The device whose lock a run takes: the GPU it drives (webgpu, node-gpu; one per visible device
 * set), else the CPU cores, which every CPU-backend run of this machine shares.
 */
function timingDevice(): string {
  const b = activeBackend();
  if (!b?.gpu) return 'cpu';
  return `gpu${process.env.CUDA_VISIBLE_DEVICES ? `-${process.env.CUDA_VISIBLE_DEVICES}` : ''}`;
}

/**
 * The clock a unit is timed with: CPU time where one thread does the work (wasm without threads,
 * the cpu backend), so other programs on the machine do not stretch it; wall time on a GPU and on
 * multi-threaded backends (tfjs-node), where CPU time would sum the threads.
 */
function timingClock(): CalibrationClock {
  const b = activeBackend();
  return b && !b.gpu && (b.tfName === 'cpu' || (b.tfName === 'wasm' && b.threads !== true)) ? 'cpu' : 'wall';
}

/**
 * k and warm-up per phase. Training: 5 iterations after 2 warm-up ones (the median of 5 shrugs off
 * one disturbed iteration; 7 iterations under the lock are seconds on toyfaces). HQS: 3 timesteps
 * after 1. Inference: up to 3 batches (editTimed warms up on one image first).
 */
const CALIBRATION = {
  train: { k: 5, warmup: 2 },
  hqs: { k: 3, warmup: 1 },
  infer: { k: 3, warmup: 0 },
} as const;

/** Inference batches whose median per image is τ_infer (a torch twin's plan carries it). */
export const INFER_CALIBRATION_UNITS = CALIBRATION.infer.k;

/** `units`: the phase's τ is units × median; `runs`: calls this process makes (batches, a resumed run's rest). */
export function calibration(phase: keyof typeof CALIBRATION, unit: string, units: number, runs?: number): Calibration {
  return new Calibration(timingDevice(), unit, units, { ...CALIBRATION[phase], runs, clock: timingClock() });
}
