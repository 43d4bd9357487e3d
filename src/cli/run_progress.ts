/**
 * The overall line of `sdd run`: after each run ends, `runs 3/14 done (1 failed), 2m10s elapsed,
 * ETA 7m35s`. It wraps the executor's progress reporter, so every executor gets it without a line
 * of its own: a run ends when the executor calls finish() for it with a final status.
 */
import { formatDuration, type ProgressReporter } from '../util/progress.js';

/** finish() statuses after which the run goes on (another process has it; Slurm requeued it). */
const NOT_FINAL = /^(busy|requeued)\b/;

export interface RunCount {
  done: number;
  failed: number;
  total: number;
  elapsedS: number;
}

/** The line itself; the ETA is the mean wall time per ended run so far times those left (jobs overlap). */
export function countLine(c: RunCount): string {
  const failed = c.failed ? ` (${c.failed} failed)` : '';
  const left = c.total - c.done;
  const eta = left === 0 ? 'done' : c.done === 0 ? 'ETA ?' : `ETA ${formatDuration((c.elapsedS / c.done) * left)}`;
  return `runs ${c.done}/${c.total} done${failed}, ${formatDuration(c.elapsedS)} elapsed, ${eta}`;
}

/**
 * `inner` plus a count line after each run that ends. `total` is the runs this command executes
 * (finished ones are skipped and not counted); `now` is for tests.
 */
export function withRunCount(inner: ProgressReporter, total: number, now: () => number = Date.now): ProgressReporter {
  const t0 = now();
  const ended = new Set<string>();
  let failed = 0;
  return {
    start: (key, label) => inner.start(key, label),
    update: (key, done, all, note) => inner.update(key, done, all, note),
    log: (line) => inner.log(line),
    stop: () => inner.stop(),
    finish(key, status) {
      inner.finish(key, status);
      if (NOT_FINAL.test(status) || ended.has(key) || total === 0) return;
      ended.add(key);
      if (/^FAILED\b/.test(status)) failed++;
      const elapsedS = (now() - t0) / 1000;
      inner.log(countLine({ done: ended.size, failed, total: Math.max(total, ended.size), elapsedS }));
    },
  };
}
