/**
 * Executes one run inside its own process (`sdd __run-one DIR`), so a crash or OOM is that run's
 * failure alone. Talks to the parent over IPC (progress); if the parent dies, the IPC channel
 * closes and the run stops at the next step, leaving a resumable partial run.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  activeBackend,
  deviceFault,
  DeviceFaultError,
  deviceMemory,
  initBackend,
  resetPeakMemory,
  type BackendChoice,
} from '../backend/index.js';
import { UserError } from '../errors.js';
import { registerBuiltinMethods } from '../methods/index.js';
import { getMethod } from '../methods/registry.js';
import { DEFAULT_ENGINE, getEngine } from '../methods/engine.js';
import { NonFiniteError, type MethodContext } from '../methods/types.js';
import { tryLock, unlock } from '../runs/lock.js';
import { runEnv } from '../runs/env.js';
import { readJson, writeJsonAtomic } from '../util/atomic.js';
import { setWorldFiles, worldFilesPath, type WorldFiles } from '../world/files.js';
import { clearCheckpoint, makeContext } from './context.js';
import type { RunConfig } from '../experiments/expand.js';

/** Exit codes the executor understands. */
export const EXIT_BUSY = 75; // another live process holds the run's lock
export const EXIT_INTERRUPTED = 130;

export type ChildMessage =
  | { type: 'progress'; done: number; total: number; label?: string }
  | { type: 'log'; message: string };

function send(msg: ChildMessage): void {
  if (process.send && process.connected) process.send(msg);
}

/**
 * progress.json in the run folder: what a parent without an IPC channel (a cluster executor,
 * `sdd status`) reads. Written at most once a second, and always at the last step.
 */
function progressFile(runDir: string): (done: number, total: number, label?: string) => void {
  let last = 0;
  return (done, total, label) => {
    const now = Date.now();
    if (now - last < 1000 && done < total) return;
    last = now;
    writeJsonAtomic(join(runDir, 'progress.json'), {
      done,
      total,
      label: label ?? null,
      at: new Date(now).toISOString(),
      memory: deviceMemory(),
    });
  };
}

export async function runOne(runDir: string, backend: BackendChoice): Promise<number> {
  if (!tryLock(runDir)) return EXIT_BUSY;
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop);
  try {
    if (existsSync(join(runDir, 'result.json'))) return 0; // finished by another process meanwhile
    return await execute(runDir, backend, abort.signal);
  } finally {
    unlock(runDir);
  }
}

async function execute(runDir: string, backend: BackendChoice, signal: AbortSignal): Promise<number> {
  const config = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf-8')) as RunConfig;
  registerBuiltinMethods();
  const method = getMethod(config.method.name);
  const started = new Date();
  const info = await initBackend(backend);
  resetPeakMemory();
  const env = runEnv(info, config.seed, started);
  writeJsonAtomic(join(runDir, 'env.json'), env);
  rmSync(join(runDir, 'error.json'), { force: true });
  const params = method.params.parse(config.method.params);
  // The world's outside files as the planner resolved them (checkpoints: / $SDD_CHECKPOINTS).
  const world = readJson<{ files: WorldFiles }>(worldFilesPath(runDir));
  if (world) setWorldFiles(world.files);
  const ctx = contextOf(runDir, config, params, signal);
  ctx.log(
    `start ${config.method.name} seed=${config.seed} backend=${info.choice}${config.engine ? ` engine=${config.engine.name} (${config.engine.precision})` : ''}`,
  );
  try {
    // A lost GPU or an out-of-memory error ends the run at once with that reason; its checkpoint
    // stays, so the next `sdd run` resumes it.
    const engine = getEngine(config.engine?.name ?? DEFAULT_ENGINE);
    const result = await Promise.race([
      engine.run(method, ctx, config.engine ?? { name: engine.name, precision: 'fp32' }),
      deviceFault(),
    ]);
    const finished = new Date();
    // The backend's memory at the end (its peak over the run: tensors, pooled and in-use bytes).
    const memory = deviceMemory();
    writeJsonAtomic(join(runDir, 'env.json'), { ...env, finished_at: finished.toISOString(), memory });
    // result.json last: from here on the run counts as finished.
    writeJsonAtomic(join(runDir, 'result.json'), {
      id: basename(runDir),
      metrics: result,
      memory,
      started_at: started.toISOString(),
      finished_at: finished.toISOString(),
      wall_s: (finished.getTime() - started.getTime()) / 1000,
    });
    clearCheckpoint(runDir);
    ctx.log('finished');
    return 0;
  } catch (e) {
    if (!signal.aborted) return failed(runDir, ctx, e);
    ctx.log('interrupted; the run stays partial and resumes from its last checkpoint');
    return EXIT_INTERRUPTED;
  }
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;

/** On a GPU backend the progress line also says how much device memory the run holds, and its peak. */
function withMemory(label: string | undefined): string | undefined {
  if (!activeBackend()?.gpu) return label;
  const m = deviceMemory();
  const mem = `${gib(m.bytes_in_use)} in use, ${gib(m.bytes_pooled)} pooled, peak ${gib(m.peak_bytes)}`;
  return label ? `${label} · ${mem}` : mem;
}

/** The method's context, its progress sent to the parent and written to progress.json. */
function contextOf(runDir: string, config: RunConfig, params: unknown, signal: AbortSignal): MethodContext<unknown> {
  const toFile = progressFile(runDir);
  return makeContext({
    runId: basename(runDir),
    runDir,
    seed: config.seed,
    world: config.world,
    params,
    signal,
    progress: (done, total, label) => {
      send({ type: 'progress', done, total, label: withMemory(label) });
      toFile(done, total, label);
    },
  });
}

/** error.json with the reason; a dead device ends the process (its pending work never settles). */
function failed(runDir: string, ctx: MethodContext<unknown>, e: unknown): number {
  const kind = e instanceof NonFiniteError ? 'nonfinite' : e instanceof DeviceFaultError ? 'device' : 'error';
  const message = (e as Error).message;
  // bad_input: the run's input is at fault (a broken checkpoint file); `sdd run` exits 2 when
  // every failure is one.
  const at = new Date().toISOString();
  const error = { kind, message, bad_input: e instanceof UserError, stack: (e as Error).stack, at };
  writeJsonAtomic(join(runDir, 'error.json'), error);
  ctx.log(`failed (${kind}): ${message}${kind === 'device' ? '; the run resumes from its last checkpoint' : ''}`);
  process.stderr.write(`run ${basename(runDir)} failed: ${message}\n`);
  if (kind === 'device') {
    // The method's own work is still pending on a dead device and would never settle.
    unlock(runDir);
    process.exit(1);
  }
  return 1;
}
