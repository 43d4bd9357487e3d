/**
 * An exclusive, cross-process lock on a compute device (the CPU cores, or a GPU), held while a run
 * times its calibration units (τ_train, τ_HQS, τ_infer: ./calibration.ts), so that concurrent runs
 * of one `sdd run --jobs N` never time themselves while another is inside a timed region.
 *
 * Where: one directory per device under a per-machine folder, $SDD_DEVICE_LOCKS or
 * <os tmpdir>/sdd-bench-device-locks-<uid> (the device is this machine's, so is the lock; a run
 * store may be shared by cluster nodes, which must not serialise each other). The lock is a
 * directory (mkdir is atomic) with owner.json {pid, since}; a lock whose owner process is gone is
 * stale and is taken over, so a killed run never blocks the others. No timers (unlike
 * proper-lockfile's mtime refresh): a holder busy in a long synchronous kernel keeps its lock.
 *
 * Waits are bounded ($SDD_DEVICE_LOCK_WAIT_S, default 600 s): past the bound the caller times
 * without the lock and records that it did not hold it.
 */
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { breakLockDir, pidAlive } from './lock_dir.js';

const POLL_MS = 25;

export function deviceLockRoot(): string {
  return process.env.SDD_DEVICE_LOCKS ?? join(tmpdir(), `sdd-bench-device-locks-${userInfo().uid}`);
}

/** Seconds a caller waits for the lock (or for another run's calibration to end) at the most. */
function maxLockWaitS(): number {
  const v = Number(process.env.SDD_DEVICE_LOCK_WAIT_S);
  return Number.isFinite(v) && v >= 0 ? v : 600;
}

function lockPath(device: string): string {
  return join(deviceLockRoot(), `${device.replace(/[^A-Za-z0-9_.-]/g, '_')}.lock`);
}

/** A lock directory without owner.json younger than this is being created right now. */
const CREATING_GRACE_MS = 10_000;

/** The pid holding the device's lock (-1: being created), or null when it is free or its owner is dead. */
function holder(device: string): number | null {
  const dir = lockPath(device);
  try {
    const owner = JSON.parse(readFileSync(join(dir, 'owner.json'), 'utf-8')) as { pid: number };
    return pidAlive(owner.pid) ? owner.pid : null;
  } catch {
    const st = statSync(dir, { throwIfNoEntry: false });
    return st && Date.now() - st.mtimeMs < CREATING_GRACE_MS ? -1 : null;
  }
}

/** Moves a dead owner's lock aside first, so two breakers cannot delete a re-taken lock. */
function breakStale(device: string): void {
  breakLockDir(lockPath(device));
}

function tryTake(device: string): boolean {
  mkdirSync(deviceLockRoot(), { recursive: true });
  try {
    mkdirSync(lockPath(device));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return false;
  }
  writeFileSync(
    join(lockPath(device), 'owner.json'),
    JSON.stringify({ pid: process.pid, since: new Date().toISOString() }),
  );
  return true;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface DeviceLock {
  readonly device: string;
  /** False when the bounded wait ran out: the caller went on without the lock. */
  readonly held: boolean;
  /** Seconds spent waiting for it. */
  readonly waitS: number;
  release(): void;
}

const heldHere = new Set<string>();
let exitHook = false;

/** Takes the device's lock, waiting at most `maxWaitS` (then returns held: false). */
export async function acquireDeviceLock(device: string, maxWaitS = maxLockWaitS()): Promise<DeviceLock> {
  const t0 = performance.now();
  let held = false;
  for (;;) {
    if (tryTake(device)) {
      held = true;
      break;
    }
    const pid = holder(device);
    if (pid === null) breakStale(device);
    else if (pid === process.pid) throw new Error(`device lock ${device}: already held by this process`);
    else if ((performance.now() - t0) / 1000 >= maxWaitS) break;
    else await sleep(POLL_MS);
  }
  if (held) {
    heldHere.add(device);
    if (!exitHook) {
      exitHook = true;
      // A run that exits while calibrating (error, signal) leaves no lock behind for the others to break.
      process.on('exit', () => heldHere.forEach((d) => rmSync(lockPath(d), { recursive: true, force: true })));
    }
  }
  return {
    device,
    held,
    waitS: (performance.now() - t0) / 1000,
    release() {
      if (!held || !heldHere.delete(device)) return;
      rmSync(lockPath(device), { recursive: true, force: true });
    },
  };
}

/**
 * Waits while another live process holds the device's lock (bounded): untimed work calls this
 * between its units, so a sibling's calibration has the device to itself. Returns seconds waited.
 */
export async function yieldToCalibration(device: string, maxWaitS = maxLockWaitS()): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const pid = holder(device);
    if (pid === null || pid === process.pid || (performance.now() - t0) / 1000 >= maxWaitS)
      return (performance.now() - t0) / 1000;
    await sleep(POLL_MS);
  }
}
