/**
 * The local executor's entry: the runs that are not finished, each in a child process on this
 * machine, --jobs at a time (local_run.ts, loaded only when runs execute: planning and validation
 * read the registry without it).
 */
import { registerExecutor } from './executors.js';

registerExecutor({
  name: 'local',
  describe: 'child processes on this machine (--jobs at a time)',
  execute: async (runs, opts) => (await import('./local_run.js')).executeRuns(runs, opts),
});
