/**
 * Runs a method process under the contract: started with execa in the run folder, its
 * contract/out/progress.json and metrics.jsonl forwarded into the run's own as they appear, and
 * killed when the run is interrupted or when it shows no progress for the stated time. Every way
 * it can end other than exit 0 becomes one line (ContractError; NonFiniteError for a NaN metric).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { z } from 'zod';
import { NonFiniteError, type MethodContext } from './types.js';
import { ContractError, parseOut, type ContractDirs } from './contract.js';
import { requestWorkerRun } from './engine_ipc.js';

const progressSchema = z.object({
  done: z.number().int().min(0),
  total: z.number().int().min(0),
  label: z.string().nullish(),
});
const metricSchema = z.object({ step: z.number().int().min(0) }).catchall(z.number());

/** Polls contract/out and forwards what is new; remembers when the process last showed progress. */
class Forwarder {
  lastActivity = Date.now();
  private progressText = '';
  private metricsBytes = 0;
  private line = 0;

  constructor(
    private readonly ctx: MethodContext<unknown>,
    private readonly dirs: ContractDirs,
  ) {}

  poll(): void {
    this.progress();
    this.metrics();
  }

  private progress(): void {
    const path = join(this.dirs.out, 'progress.json');
    if (!existsSync(path)) return;
    const text = readFileSync(path, 'utf-8');
    if (text === this.progressText) return;
    this.progressText = text;
    this.lastActivity = Date.now();
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new ContractError('contract/out/progress.json: not JSON (write it to a temp file and rename)');
    }
    const p = parseOut(progressSchema, value, 'contract/out/progress.json');
    this.ctx.progress(p.done, p.total, p.label ?? undefined);
  }

  /** New whole lines of metrics.jsonl (a last line without its newline is still being written). */
  private metrics(): void {
    const path = join(this.dirs.out, 'metrics.jsonl');
    if (!existsSync(path)) return;
    const buf = readFileSync(path);
    // Lines already forwarded are the run's: the file may only grow.
    if (buf.length < this.metricsBytes)
      throw new ContractError('contract/out/metrics.jsonl: shrank while the plugin ran (append whole lines only)');
    const end = buf.lastIndexOf(0x0a) + 1;
    if (end <= this.metricsBytes) return;
    const lines = buf.subarray(this.metricsBytes, end).toString('utf-8').split('\n').slice(0, -1);
    this.metricsBytes = end;
    this.lastActivity = Date.now();
    for (const text of lines) this.metric(text, ++this.line);
  }

  private metric(text: string, n: number): void {
    const where = `contract/out/metrics.jsonl line ${n}`;
    const bad = /\b(NaN|-?Infinity)\b/.exec(text);
    if (bad) throw new NonFiniteError(`${where}: ${bad[0]}`);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new ContractError(`${where}: not JSON`);
    }
    const { step, ...scalars } = parseOut(metricSchema, value, where);
    this.ctx.metric(step, scalars);
  }
}

/** The last lines a process wrote to stderr, kept for the failure line. */
class Tail {
  private lines: string[] = [];
  private partial = '';

  constructor(private readonly log: (line: string) => void) {}

  push(chunk: Buffer | string): void {
    const parts = (this.partial + chunk.toString()).split('\n');
    this.partial = parts.pop() ?? '';
    for (const l of parts) this.add(l);
  }

  last(n: number): string {
    if (this.partial) this.add(this.partial);
    this.partial = '';
    return this.lines.slice(-n).join(' | ');
  }

  private add(line: string): void {
    if (!line.trim()) return;
    this.log(line);
    this.lines = [...this.lines.slice(-19), line.trim()];
  }
}

/** A process that ended other than with exit 0; `code` tells the torch engine's device faults (3) apart. */
export class PluginExitError extends ContractError {
  constructor(
    message: string,
    readonly code: number | null,
  ) {
    super(message);
  }
}

export interface PluginExit {
  /** Seconds from start to exit, as the harness saw them. */
  wall_s: number;
}

const POLL_MS = 200;
const KILL_GRACE_MS = 2000;

/** A method process under way, however it was started: its end, and how to stop it. */
interface Launched {
  /** Resolves when it ended: null for success, else the one-line reason (and the exit code, if any). */
  ended: Promise<{ failure: string; code: number | null } | null>;
  stop(): void;
}

/**
 * Watches a launched method process to its end: forwards contract/out's progress and curve, stops
 * it on an interrupt, a hang or a bad line, and resolves after a last poll; throws the first
 * reason it failed otherwise (interrupted: the abort is left for the caller to see).
 */
async function supervise(
  ctx: MethodContext<unknown>,
  dirs: ContractDirs,
  hangTimeoutS: number,
  launch: () => Launched,
): Promise<PluginExit> {
  const fwd = new Forwarder(ctx, dirs);
  const t0 = Date.now();
  const run = launch();
  let failure: Error | null = null;
  const stop = (e: Error) => {
    failure ??= e;
    run.stop();
  };
  const onAbort = () => stop(new Error('interrupted'));
  ctx.signal.addEventListener('abort', onAbort);
  const timer = setInterval(() => {
    try {
      fwd.poll();
      if (Date.now() - fwd.lastActivity > hangTimeoutS * 1000)
        stop(new ContractError(`plugin showed no progress for ${hangTimeoutS} s (hang_timeout_s): killed`));
    } catch (e) {
      stop(e as Error);
    }
  }, POLL_MS);
  try {
    const end = await run.ended;
    if (!failure) fwd.poll();
    if (failure) throw failure;
    if (end) throw new PluginExitError(end.failure, end.code);
    return { wall_s: (Date.now() - t0) / 1000 };
  } finally {
    clearInterval(timer);
    ctx.signal.removeEventListener('abort', onAbort);
  }
}

/** Runs `command` in the run folder to its end (supervise). */
export async function runPlugin(
  ctx: MethodContext<unknown>,
  command: string[],
  dirs: ContractDirs,
  hangTimeoutS: number,
  env: Record<string, string> = {},
): Promise<PluginExit> {
  return supervise(ctx, dirs, hangTimeoutS, () => spawned(ctx, command, dirs, env));
}

/** Hands the run to one of `sdd run`'s workers of `engine` (engine_ipc.ts) and watches it the same way. */
export async function runInWorker(
  ctx: MethodContext<unknown>,
  engine: string,
  dirs: ContractDirs,
  hangTimeoutS: number,
): Promise<PluginExit> {
  return supervise(ctx, dirs, hangTimeoutS, () => {
    const call = requestWorkerRun(engine, dirs.root, (l) => ctx.log(`${engine} worker: ${l}`));
    return {
      ended: call.done.then((r) =>
        r.ok ? null : { failure: `${engine} worker: ${r.error ?? 'failed'}`.slice(0, 500), code: r.code },
      ),
      stop: call.cancel,
    };
  });
}

function spawned(
  ctx: MethodContext<unknown>,
  command: string[],
  dirs: ContractDirs,
  env: Record<string, string>,
): Launched {
  const stderr = new Tail((l) => ctx.log(`plugin stderr: ${l}`));
  const stdout = new Tail((l) => ctx.log(`plugin: ${l}`));
  // Its own process group, so that a wrapper's children (sh -c, a launcher) are killed with it:
  // one of them left alive would hold the output pipes open and the run would never end.
  const child = execa(command[0], command.slice(1), {
    cwd: ctx.runDir,
    env: { ...env, SDD_CONTRACT_DIR: dirs.root, SDD_PARENT_PID: String(process.pid) },
    stdin: 'ignore',
    buffer: false,
    reject: false,
    detached: true,
  });
  child.stdout?.on('data', (c: Buffer) => stdout.push(c));
  child.stderr?.on('data', (c: Buffer) => stderr.push(c));
  const ended = child.then((r) => {
    killGroup(child.pid, 'SIGKILL'); // what it left running in the background writes nothing more
    return r.exitCode === 0 ? null : { failure: exitReason(r, stderr.last(3)), code: r.exitCode ?? null };
  });
  return {
    ended,
    stop: () => {
      killGroup(child.pid, 'SIGTERM');
      setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS).unref();
    },
  };
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone already.
  }
}

function exitReason(
  r: { exitCode?: number; signal?: string; code?: string; originalMessage?: string; shortMessage?: string },
  tail: string,
): string {
  if (r.exitCode === undefined && !r.signal)
    return `plugin could not start: ${(r.originalMessage ?? r.shortMessage ?? 'unknown').split('\n')[0]}`;
  const how = r.signal ? `was killed by ${r.signal}` : `exited with code ${r.exitCode}`;
  return `plugin ${how}${tail ? `: ${tail}` : ' (nothing on stderr)'}`.slice(0, 500);
}
