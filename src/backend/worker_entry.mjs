// Piscina worker entry: worker threads do not inherit the loader registered in the main thread,
// so each worker registers tsx itself before loading the TypeScript task modules. A worker thread
// has its own module graph: the modules that register tasks (WorkerPool's taskModules, in
// workerData) are imported here, at start-up, so that their registerWorkerTask calls run in it.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const mod = await import('./worker_tasks.ts');
for (const url of workerData?.taskModules ?? []) {
  try {
    await import(url);
  } catch (e) {
    // Reported by every task instead of killing the thread (which the pool would only restart).
    const err = new Error(`worker task module ${url} failed to load: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
    mod.taskModulesFailed(err);
    break;
  }
}
export default mod.default;
