/**
 * Tasks a pool worker can run, by name, registered by the modules that own them. The backend
 * layer knows no task of a higher layer: a module registers its tasks when it is imported
 * (`registerWorkerTask`), and a pool is told which modules to import in its workers (a worker
 * thread has its own module graph: see WorkerPool's `taskModules`).
 *
 * Task names, inputs and outputs are typed through `WorkerTasks`, which each owning module
 * extends by declaration merging:
 *
 *   declare module '../backend/task_registry.js' {
 *     interface WorkerTasks { gradStep: { input: GradStepInput; output: GradStepOutput } }
 *   }
 *
 * Kept free of tfjs and of the backend set-up so that registering a task costs nothing in the
 * main thread.
 */

/** Task name → its input and output (structured-clonable). Extended by the modules that register tasks. */
export interface WorkerTasks {}

export type TaskName = keyof WorkerTasks & string;
export type TaskInput<N extends TaskName> = WorkerTasks[N]['input'];
export type TaskOutput<N extends TaskName> = WorkerTasks[N]['output'];
export type WorkerTaskHandler<N extends TaskName> = (input: TaskInput<N>) => TaskOutput<N> | Promise<TaskOutput<N>>;

const handlers = new Map<string, (input: unknown) => unknown>();

/**
 * Makes task `name` runnable in this thread (each worker imports its pool's task modules, which
 * call this at load). A name can be registered once per thread: two modules claiming the same
 * name is a bug.
 */
export function registerWorkerTask<N extends TaskName>(name: N, handler: WorkerTaskHandler<N>): void {
  if (handlers.has(name)) throw new Error(`worker task '${name}' is registered twice`);
  handlers.set(name, handler as (input: unknown) => unknown);
}

/** The handler registered under `name` in this thread, if any. */
export function workerTaskHandler(name: string): ((input: unknown) => unknown) | undefined {
  return handlers.get(name);
}

/** The task names registered in this thread, sorted (error messages, tests). */
export function registeredWorkerTasks(): string[] {
  return [...handlers.keys()].sort();
}
