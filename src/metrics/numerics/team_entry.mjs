// Linear-algebra helper thread: worker threads do not inherit the loader registered in the main
// thread, so the helper registers tsx itself before loading its TypeScript module.
import { register } from 'tsx/esm/api';

register();
await import('./team_worker.ts');
