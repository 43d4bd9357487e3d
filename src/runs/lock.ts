/**
 * One lock per run, so two processes never execute the same run. The lock is a directory (mkdir
 * is atomic) holding owner.json {pid, host}. A lock whose owner process is gone (killed, crashed)
 * on this host is stale and is taken over. A lock of another host is respected until removed by
 * hand (`sdd gc --force-locks`), since we cannot tell whether that process lives.
 */
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { slurmTaskId } from '../util/env.js';
import { breakLockDir, pidAlive } from '../util/lock_dir.js';

export interface LockOwner {
  pid: number;
  host: string;
  since: string;
  /** The Slurm task holding it ("123_4"): a cluster executor can tell from the queue whether it lives. */
  slurm_job?: string;
}

export type LockState = { held: false } | { held: true; owner: LockOwner | null; alive: boolean };

/** A lock directory without owner.json younger than this is being created right now. */
const CREATING_GRACE_MS = 10_000;

export function lockDir(runDir: string): string {
  return join(runDir, 'lock');
}

export function readLock(runDir: string): LockState {
  const dir = lockDir(runDir);
  let st;
  try {
    st = statSync(dir);
  } catch {
    return { held: false };
  }
  let owner: LockOwner | null = null;
  try {
    owner = JSON.parse(readFileSync(join(dir, 'owner.json'), 'utf-8')) as LockOwner;
  } catch {
    return { held: true, owner: null, alive: Date.now() - st.mtimeMs < CREATING_GRACE_MS };
  }
  const alive = owner.host !== hostname() || pidAlive(owner.pid);
  return { held: true, owner, alive };
}

/** True when this process now holds the lock; false when a live process holds it. */
export function tryLock(runDir: string): boolean {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      mkdirSync(lockDir(runDir));
      const slurm = slurmTaskId();
      const owner: LockOwner = {
        pid: process.pid,
        host: hostname(),
        since: new Date().toISOString(),
        ...(slurm ? { slurm_job: slurm } : {}),
      };
      writeFileSync(join(lockDir(runDir), 'owner.json'), JSON.stringify(owner));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const state = readLock(runDir);
    if (state.held && state.alive) return false;
    breakLock(runDir);
  }
  return false;
}

/** Breaks a stale run lock (moved aside first: see breakLockDir). */
export function breakLock(runDir: string): void {
  breakLockDir(lockDir(runDir));
}

export function unlock(runDir: string): void {
  const state = readLock(runDir);
  if (state.held && state.owner?.pid === process.pid && state.owner.host === hostname()) {
    rmSync(lockDir(runDir), { recursive: true, force: true });
  }
}
