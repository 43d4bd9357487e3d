/** Registers every built-in executor (a new executor is one file here plus its import line). */
import './local.js';
import './slurm.js';

export {
  allExecutors,
  executorNames,
  getExecutor,
  type ExecuteOptions,
  type Executor,
  type RunOutcome,
} from './executors.js';
