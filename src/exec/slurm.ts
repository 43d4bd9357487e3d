/**
 * The Slurm executor's entry: its settings (`slurm:` in experiment files and `sdd run` flags), its
 * status hook for `sdd status`, its preflight, and its execution, which submits the runs that are
 * not finished as one `sbatch --array` per resource set and tracks them (slurm_run.ts, loaded only
 * when runs execute: planning and validation read the settings without it).
 */
import { registerExecutor, type QueueState } from './executors.js';
import { SLURM_SETTINGS } from './slurm_job.js';
import { isActive, isQueued, preflight, slurmStatus } from './slurm_queue.js';

/** The status hook: each run's Slurm task, as the queue sees it (null: no task recorded). */
async function queueStates(dirs: string[]): Promise<Array<QueueState | null>> {
  return (await slurmStatus(dirs)).map((s) => {
    if (!s) return null;
    const task = s.record.task;
    const st = s.state;
    if (st && isActive(st.state)) {
      const state = st.state.toLowerCase();
      if (isQueued(st.state)) return { task, phase: 'queued', detail: `Slurm task ${task} ${state} (${st.reason})` };
      return { task, phase: 'running', detail: `Slurm task ${task} ${state} on ${st.node}` };
    }
    const why = st?.reason && st.reason !== 'None' ? ` (${st.reason})` : '';
    const detail = st ? `Slurm task ${task} ${st.state.toLowerCase()}${why}` : `Slurm task ${task} left the queue`;
    return { task, phase: 'ended', detail };
  });
}

registerExecutor({
  name: 'slurm',
  describe: 'Slurm array jobs: a task per run on the cluster, tracked through the queue and the shared run store',
  settings: SLURM_SETTINGS,
  asksGpus: (block) => typeof block.gpus === 'number' && block.gpus > 0,
  detachable: true,
  preflight,
  execute: async (runs, opts) => (await import('./slurm_run.js')).execute(runs, opts),
  queueStates,
});
