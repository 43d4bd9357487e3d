/**
 * Engine workers for one `sdd run` (the local executor): long-lived processes of an engine (torch:
 * `python -m sdd_torch worker`) that run contract folders in turn for the run processes, which ask
 * over IPC (src/methods/engine_ipc.ts). Python, torch and CUDA start once per slot, not once per
 * run. Slots are the run processes' count (`--jobs`); on a host with several GPUs slot k gets
 * device k mod n of CUDA_VISIBLE_DEVICES (or of nvidia-smi's list), so runs spread over the GPUs
 * and `--jobs` counts processes per GPU times the GPUs. A worker dies with `sdd run`: its stdin
 * closes and its parent changes (the worker stops at its next write), and close() kills it.
 */
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import { getEngine } from '../methods/engine.js';
import type { EngineReply, EngineRequest } from '../methods/engine_ipc.js';
import { gpuInfo } from '../util/env.js';

type Answer = { ok: boolean; code: number | null; error: string | null };

class Worker {
  private readonly proc: ResultPromise<{
    stdin: 'pipe';
    stdout: 'pipe';
    stderr: 'pipe';
    buffer: false;
    reject: false;
    detached: true;
  }>;
  private pending: ((a: Answer) => void) | null = null;
  /** Where its stderr lines go: the run it is working for. */
  log: (line: string) => void = () => {};
  dead = false;

  constructor(command: string[], env: Record<string, string>) {
    this.proc = execa(command[0], command.slice(1), {
      env: { ...env, SDD_PARENT_PID: String(process.pid) },
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: false,
      reject: false,
      detached: true,
    });
    createInterface({ input: this.proc.stdout }).on('line', (l) => this.answer(l));
    createInterface({ input: this.proc.stderr }).on('line', (l) => this.log(l));
    void this.proc.then((r) => {
      this.dead = true;
      const why = r.signal ? `killed by ${r.signal}` : `exited with code ${r.exitCode ?? '?'}`;
      this.settle({ ok: false, code: r.exitCode ?? null, error: `the worker ${why} (${r.command})` });
    });
  }

  run(contract: string): Promise<Answer> {
    return new Promise((resolve) => {
      this.pending = resolve;
      this.proc.stdin.write(`${JSON.stringify({ contract })}\n`);
    });
  }

  kill(): void {
    this.dead = true;
    if (this.proc.pid === undefined) return;
    try {
      process.kill(-this.proc.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }

  private answer(line: string): void {
    let a: Answer;
    try {
      const v = JSON.parse(line) as { ok?: unknown; code?: unknown; error?: unknown };
      a = {
        ok: v.ok === true,
        code: typeof v.code === 'number' ? v.code : null,
        error: typeof v.error === 'string' ? v.error : null,
      };
    } catch {
      a = {
        ok: false,
        code: null,
        error: `worker wrote something other than an answer on stdout: ${line.slice(0, 120)}`,
      };
    }
    this.settle(a);
  }

  private settle(a: Answer): void {
    const p = this.pending;
    this.pending = null;
    p?.(a);
  }
}

/** GPU indices to spread slots over: CUDA_VISIBLE_DEVICES where set, else nvidia-smi's; [] on a host without. */
function devices(): string[] {
  const given = process.env.CUDA_VISIBLE_DEVICES;
  if (given !== undefined)
    return given
      .split(',')
      .map((d) => d.trim())
      .filter(Boolean);
  return gpuInfo().map((_, i) => String(i));
}

export class EngineWorkers {
  private readonly idle = new Map<string, Worker[]>();
  private readonly busy = new Map<string, Worker>();
  private readonly gpus = devices();
  private started = 0;

  /**
   * Serves one request of a run process; `reply` sends back over its IPC channel. `owner` tells its
   * requests apart from another run process's.
   */
  handle(owner: string, msg: EngineRequest, reply: (m: EngineReply) => void): void {
    const key = `${owner}:${msg.id}`;
    if (msg.type === 'engine-cancel') {
      this.busy.get(key)?.kill();
      return;
    }
    let w: Worker;
    try {
      w = this.take(msg.engine);
    } catch (e) {
      reply({ type: 'engine-done', id: msg.id, ok: false, code: null, error: (e as Error).message });
      return;
    }
    this.busy.set(key, w);
    w.log = (line) => reply({ type: 'engine-log', id: msg.id, line });
    void w.run(msg.contract).then((a) => {
      this.busy.delete(key);
      w.log = () => {};
      if (!w.dead) this.idle.get(msg.engine)?.push(w);
      reply({ type: 'engine-done', id: msg.id, ...a });
    });
  }

  /**
   * A run process ended: whatever a worker still does for it is killed (it would write into a run
   * that may be resumed).
   */
  ownerGone(owner: string): void {
    for (const [key, w] of this.busy) if (key.startsWith(`${owner}:`)) w.kill();
  }

  close(): void {
    for (const ws of this.idle.values()) for (const w of ws) w.kill();
    for (const w of this.busy.values()) w.kill();
    this.idle.clear();
  }

  private take(engine: string): Worker {
    const pool = this.idle.get(engine) ?? [];
    this.idle.set(engine, pool);
    const ready = pool.pop();
    if (ready) return ready;
    const spec = getEngine(engine).worker?.();
    if (!spec) throw new Error(`engine '${engine}' has no worker`);
    const slot = this.started++;
    const gpu: Record<string, string> =
      this.gpus.length > 1 ? { CUDA_VISIBLE_DEVICES: this.gpus[slot % this.gpus.length] } : {};
    return new Worker(spec.command, { ...spec.env, ...gpu });
  }
}
