/**
 * A run process asking its `sdd run` for an engine worker (src/exec/engine_workers.ts): one
 * long-lived Python per slot runs contract folders in turn, so Python, torch and CUDA start once
 * per `sdd run`, not once per run. The messages travel over the run process's IPC channel; a run
 * process without one (a Slurm task, `sdd __run-one` by hand) starts its own process instead.
 */

/** Run process → `sdd run`. */
export type EngineRequest =
  | { type: 'engine-run'; id: number; engine: string; contract: string }
  | { type: 'engine-cancel'; id: number };

/** `sdd run` → run process. */
export type EngineReply =
  | { type: 'engine-log'; id: number; line: string }
  | { type: 'engine-done'; id: number; ok: boolean; code: number | null; error: string | null };

/** Set by the local executor for its run processes: it serves engine-run requests. */
export const WORKERS_ENV = 'SDD_ENGINE_WORKERS';

export function workersAvailable(): boolean {
  return process.env[WORKERS_ENV] === '1' && typeof process.send === 'function' && process.connected;
}

let nextId = 1;

export interface WorkerCall {
  done: Promise<{ ok: boolean; code: number | null; error: string | null }>;
  /** Asks `sdd run` to kill the worker running it (a hang, an interrupt): the run ends as cancelled. */
  cancel(): void;
}

/** Hands the contract folder to a worker of `engine`; `log` gets its stderr lines meanwhile. */
export function requestWorkerRun(engine: string, contract: string, log: (line: string) => void): WorkerCall {
  const id = nextId++;
  const send = (m: EngineRequest) => {
    if (process.connected) process.send?.(m);
  };
  const done = new Promise<{ ok: boolean; code: number | null; error: string | null }>((resolve, reject) => {
    const onMessage = (m: unknown) => {
      const msg = m as EngineReply;
      if (msg.id !== id) return;
      if (msg.type === 'engine-log') log(msg.line);
      if (msg.type !== 'engine-done') return;
      cleanup();
      resolve({ ok: msg.ok, code: msg.code, error: msg.error });
    };
    const onDisconnect = () => {
      cleanup();
      reject(new Error('sdd run is gone (IPC channel closed)'));
    };
    const cleanup = () => {
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
    };
    process.on('message', onMessage);
    process.on('disconnect', onDisconnect);
  });
  send({ type: 'engine-run', id, engine, contract });
  return { done, cancel: () => send({ type: 'engine-cancel', id }) };
}
