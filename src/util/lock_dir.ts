/** What the run locks (src/runs/lock.ts) and the device locks (./device_lock.ts) share. */
import { renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

/** Whether process `pid` exists on this host (EPERM: it does, under another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes a stale lock directory by moving it aside first, so a concurrent breaker cannot delete a
 * lock that was re-taken in between (a rename of the same path succeeds only once).
 */
export function breakLockDir(dir: string): void {
  const aside = `${dir}.stale-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(dir, aside);
  } catch {
    return;
  }
  rmSync(aside, { recursive: true, force: true });
}
