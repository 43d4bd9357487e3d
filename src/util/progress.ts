/**
 * Progress of long work: one bar per active task with ETA on a TTY (cli-progress), plain log lines
 * otherwise (at most one per task every 20% or 30 s, so CI logs stay readable).
 */
import cliProgress from 'cli-progress';

export interface ProgressReporter {
  start(key: string, label: string): void;
  update(key: string, done: number, total: number, note?: string): void;
  finish(key: string, status: string): void;
  log(line: string): void;
  stop(): void;
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function createProgress(stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  return stream.isTTY ? new BarProgress(stream) : new LineProgress(stream);
}

class BarProgress implements ProgressReporter {
  private readonly multi: cliProgress.MultiBar;
  private readonly bars = new Map<string, cliProgress.SingleBar>();

  constructor(stream: NodeJS.WriteStream) {
    this.multi = new cliProgress.MultiBar(
      {
        stream,
        format: ' {label} [{bar}] {percentage}% {value}/{total} | ETA {eta_formatted} | {note}',
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  start(key: string, label: string): void {
    this.bars.set(key, this.multi.create(1, 0, { label, note: '' }));
  }

  update(key: string, done: number, total: number, note = ''): void {
    const bar = this.bars.get(key);
    if (!bar) return;
    bar.setTotal(total);
    bar.update(done, { note });
  }

  finish(key: string, status: string): void {
    const bar = this.bars.get(key);
    if (!bar) return;
    bar.update({ note: status });
    bar.stop();
    this.multi.remove(bar);
    this.bars.delete(key);
    this.multi.log(`${status}\n`);
  }

  log(line: string): void {
    this.multi.log(line.endsWith('\n') ? line : line + '\n');
  }

  stop(): void {
    this.multi.stop();
  }
}

class LineProgress implements ProgressReporter {
  // `first` anchors the ETA's rate at the first update seen, not at zero: a resumed task starts at
  // its checkpoint's step, and counting those steps as done in this process made the ETA ~0.
  private readonly tasks = new Map<
    string,
    { label: string; t0: number; lastT: number; lastPct: number; first?: { t: number; done: number } }
  >();

  constructor(private readonly stream: NodeJS.WriteStream) {}

  start(key: string, label: string): void {
    const now = Date.now();
    this.tasks.set(key, { label, t0: now, lastT: now, lastPct: -1 });
  }

  update(key: string, done: number, total: number, note = ''): void {
    const t = this.tasks.get(key);
    if (!t || total <= 0) return;
    const now = Date.now();
    t.first ??= { t: now, done };
    const pct = Math.floor((100 * done) / total);
    if (pct < t.lastPct + 20 && now - t.lastT < 30_000 && done < total) return;
    t.lastPct = pct;
    t.lastT = now;
    const elapsed = (now - t.t0) / 1000;
    const rate = done > t.first.done ? (now - t.first.t) / 1000 / (done - t.first.done) : NaN;
    const eta = done >= total ? 0 : rate * (total - done);
    this.log(
      `${t.label}: ${done}/${total} (${pct}%) elapsed ${formatDuration(elapsed)} eta ${formatDuration(eta)}${note ? ` ${note}` : ''}`,
    );
  }

  finish(key: string, status: string): void {
    this.tasks.delete(key);
    this.log(status);
  }

  log(line: string): void {
    this.stream.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  }

  stop(): void {}
}
