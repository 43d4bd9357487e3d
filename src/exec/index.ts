/** Registers every built-in executor (a new executor is one file here plus its import line). */
import './executor.js';
import './slurm.js';

export { getExecutor, type ExecuteOptions, type Executor, type RunOutcome } from './executors.js';
