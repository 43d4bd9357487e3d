/**
 * Worker pool for data-parallel work (feature extraction, sampling, metrics). wasm runs one thread
 * in Node, so using both cores means two workers, each owning its own wasm backend. Tasks are
 * named and take/return structured-clonable data (typed arrays travel as transferables where the
 * caller passes them so). The backend's own tasks are in worker_tasks.ts; a higher layer's tasks
 * (gradStep, a world's renderFaces) are registered by their own modules (task_registry.ts), which
 * the pool's workers import at start-up: pass those modules' URLs as `taskModules`.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { TaskName, TaskInput, TaskOutput } from './task_registry.js';

export function poolSize(): number {
  const env = Number(process.env.SDD_WORKERS);
  return Number.isInteger(env) && env > 0 ? env : availableParallelism();
}

export class WorkerPool {
  private readonly piscina: Piscina;

  /**
   * `taskModules`: URLs (`import.meta.url`) of the modules that register the tasks this pool will
   * run beyond the backend's own; each worker imports them, in order, when it starts.
   */
  constructor(
    readonly size = poolSize(),
    backend = process.env.SDD_BACKEND ?? 'auto',
    readonly taskModules: readonly string[] = [],
  ) {
    this.piscina = new Piscina({
      filename: fileURLToPath(new URL('./worker_entry.mjs', import.meta.url)),
      minThreads: size,
      maxThreads: size,
      idleTimeout: 60_000,
      workerData: { backend, taskModules: [...taskModules] },
    });
  }

  run<N extends TaskName>(name: N, input: TaskInput<N>, transferList?: ArrayBuffer[]): Promise<TaskOutput<N>> {
    return this.piscina.run({ name, input }, { transferList }) as Promise<TaskOutput<N>>;
  }

  /** Splits `items` into one contiguous chunk per worker and runs them concurrently. */
  async map<T, R>(items: T[], fn: (chunk: T[]) => Promise<R>): Promise<R[]> {
    const per = Math.ceil(items.length / this.size);
    const chunks: T[][] = [];
    for (let i = 0; i < items.length; i += per) chunks.push(items.slice(i, i + per));
    return Promise.all(chunks.map(fn));
  }

  async close(): Promise<void> {
    await this.piscina.destroy();
  }
}
