/**
 * How a run's τ is measured (#30): not as the wall time of the whole phase, which grows with
 * whatever else shares the device (`--jobs N`), but as
 *
 *   τ_phase = units × median(time of one unit over k calibration units),
 *
 * the k units (training iterations, HQS timesteps, inference batches per image) timed while this
 * process holds the device's exclusive lock (./device_lock.ts). The first `warmup` units run
 * untimed before it (kernel compilation, first allocations). Outside calibration a phase runs
 * without the lock, pausing between units while another run calibrates (yieldToCalibration), so a
 * calibration shares the device with no other run's training, scan or inference loop.
 *
 * The clock: wall time on a GPU or a multi-threaded CPU backend; on a single-threaded CPU backend
 * (wasm without threads, cpu) the process's CPU time, which is what the unit would take alone on
 * a core: the lock keeps this project's runs apart, but not other programs on the machine, and on
 * a loaded machine a unit's wall time measured the scheduler more than the work (#30: per
 * iteration 0.24–1.08 s wall at --jobs 1 on 2 cores at load 10). Both medians are recorded.
 *
 * The record (TimingRecord) goes into result.json, so a report can say how τ was measured.
 */
import { acquireDeviceLock, deviceLockRoot, yieldToCalibration, type DeviceLock } from './device_lock.js';

export interface TimingRecord {
  /** 'median-under-device-lock' (this protocol). */
  protocol: string;
  device: string;
  /** What one unit is: 'iteration', 'timestep', 'image'. */
  unit: string;
  /** Units the phase has; τ_phase = units × median_s. */
  units: number;
  /** 'cpu': process CPU time per unit (single-threaded CPU backends); 'wall': wall time. */
  clock: string;
  /** Median wall time per unit over the same calibration units (equals median_s when clock is wall). */
  median_wall_s: number;
  /**
   * Calibration calls timed under the lock (k: iterations, timesteps, inference batches) and
   * untimed warm-up calls before them.
   */
  k: number;
  warmup: number;
  median_s: number;
  /** Seconds this run waited for the lock before calibrating. */
  lock_wait_s: number;
  /** False only when the bounded wait ran out and the units were timed without the lock. */
  lock_held: boolean;
  /** Seconds this phase paused, outside calibration, while other runs calibrated. */
  yield_s: number;
  lock_dir: string;
  [key: string]: string | number | boolean;
}

const TIMING_PROTOCOL = 'median-under-device-lock';

export function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * One phase's calibration. Call `begin(i)` before unit i and `end(i, sync)` after it (sync: what
 * makes the unit's device work finish, e.g. reading a value back); units are numbered from 0 in
 * the order this process runs them (a resumed run calibrates on the units it runs).
 */
export type CalibrationClock = 'wall' | 'cpu';

/** This process's CPU time (user + system), in seconds. */
export const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

export class Calibration {
  private readonly samples: number[] = [];
  private readonly wallSamples: number[] = [];
  private lock: DeviceLock | null = null;
  private lockWait = 0;
  private lockHeld = true;
  private yielded = 0;
  private t0 = 0;
  private c0 = 0;
  private readonly clock: CalibrationClock;
  private seen = 0;
  private readonly k: number;
  private readonly warmup: number;

  constructor(
    private readonly device: string,
    private readonly unit: string,
    private readonly units: number,
    opts: { k: number; warmup: number; runs?: number; clock?: CalibrationClock },
  ) {
    this.clock = opts.clock ?? 'wall';
    // A phase (or a resumed run's rest of it: `runs` units) shorter than warm-up + k: keep at
    // least one timed unit, warm up with what is left.
    const runs = Math.max(1, opts.runs ?? units);
    this.warmup = Math.max(0, Math.min(opts.warmup, runs - 1));
    this.k = Math.max(1, Math.min(opts.k, runs - this.warmup));
  }

  /** A resumed run whose calibration finished before the interruption: its record stands. */
  restore(r: TimingRecord): void {
    this.samples.splice(0, this.samples.length, ...Array.from({ length: Math.max(1, r.k) }, () => r.median_s));
    this.wallSamples.splice(0, this.wallSamples.length, ...this.samples.map(() => r.median_wall_s ?? r.median_s));
    this.lockWait = r.lock_wait_s;
    this.lockHeld = r.lock_held;
    this.yielded = r.yield_s;
  }

  /** True once the k units are timed: the rest of the phase runs unlocked. */
  get done(): boolean {
    return this.samples.length >= this.k;
  }

  async begin(): Promise<void> {
    const timed = this.seen >= this.warmup && !this.done;
    if (timed && !this.lock) {
      this.lock = await acquireDeviceLock(this.device);
      this.lockWait += this.lock.waitS;
      this.lockHeld &&= this.lock.held;
    }
    if (!timed) this.yielded += await yieldToCalibration(this.device);
    this.t0 = performance.now();
    this.c0 = cpuSeconds();
  }

  /** `per`: units the call did (an inference batch of `per` images): its sample is the time per unit. */
  async end(sync?: () => Promise<unknown>, per = 1): Promise<void> {
    const index = this.seen++;
    if (index < this.warmup || this.done) return;
    await sync?.();
    const wall = (performance.now() - this.t0) / 1000 / per;
    this.wallSamples.push(wall);
    this.samples.push(this.clock === 'cpu' ? (cpuSeconds() - this.c0) / per : wall);
    if (this.done) this.release();
  }

  /** Lets the lock go (also on error: call from a finally). */
  release(): void {
    this.lock?.release();
    this.lock = null;
  }

  /** Samples per unit so far (for tests and logs). */
  get timings(): readonly number[] {
    return this.samples;
  }

  /** The phase's τ: units × the median calibration unit (NaN before any unit was timed). */
  get total(): number {
    return this.units * median(this.samples);
  }

  record(): TimingRecord {
    return {
      protocol: TIMING_PROTOCOL,
      device: this.device,
      unit: this.unit,
      units: this.units,
      k: this.samples.length,
      warmup: this.warmup,
      clock: this.clock,
      median_s: median(this.samples),
      median_wall_s: median(this.wallSamples),
      lock_wait_s: this.lockWait,
      lock_held: this.lockHeld,
      yield_s: this.yielded,
      lock_dir: deviceLockRoot(),
    };
  }
}
