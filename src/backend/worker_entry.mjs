// Piscina worker entry: worker threads do not inherit the loader registered in the main thread,
// so each worker registers tsx itself before loading the TypeScript task module.
import { register } from 'tsx/esm/api';

register();
const mod = await import('./worker_tasks.ts');
export default mod.default;
