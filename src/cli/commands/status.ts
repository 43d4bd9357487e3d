/** sdd status: where every run of the experiment files stands. */
import type { CommandModule } from 'yargs';
import { planAll } from '../../experiments/plan.js';
import { RunStore } from '../../runs/store.js';
import { describeRun } from '../../exec/executors.js';
import { runStatuses, type RunState, type PlannedRunStatus } from '../../exec/status.js';
import { table } from '../table.js';
import { storeFolder } from '../paths.js';
import { withPlanOptions, type PlanArgs } from '../plan_options.js';
import { profileHints } from '../profile_hints.js';

const ORDER: RunState[] = ['finished', 'stale', 'running', 'queued', 'partial', 'failed', 'not started'];

function countsLine(statuses: PlannedRunStatus[]): string {
  const counts = ORDER.map((k) => [k, statuses.filter((s) => s.state === k).length] as const).filter(([, n]) => n > 0);
  return `${statuses.length} runs: ${counts.map(([k, n]) => `${n} ${k}`).join(', ')}\n`;
}

/** Scripts can wait on it: 0 once every run is finished, 1 if any failed, 3 while work remains. */
function exitCodeOf(statuses: PlannedRunStatus[]): number {
  if (statuses.every((s) => s.state === 'finished')) return 0;
  return statuses.some((s) => s.state === 'failed') ? 1 : 3;
}

export function statusCommand(setCode: (c: number) => void): CommandModule<object, PlanArgs & { json: boolean }> {
  return {
    command: 'status <files..>',
    describe:
      'where every run of the experiment files stands: finished, running, queued (Slurm), failed (why), ' +
      'partial or not started',
    builder: (y) => withPlanOptions(y).option('json', { type: 'boolean', default: false }) as never,
    handler: async (a) => {
      const runs = planAll(a.files, { sets: a.set, profile: a.profile });
      const store = new RunStore(storeFolder(a.store, false));
      const statuses = await runStatuses(runs, store);
      if (a.json) {
        process.stdout.write(JSON.stringify(statuses, null, 2) + '\n');
        return;
      }
      const rows = statuses.map((s, i) => [
        s.id,
        s.state,
        describeRun(runs[i]).slice(s.id.length + 1),
        s.detail, // the last column: whole, so a long path does not hide why a run failed
      ]);
      process.stdout.write(table(['id', 'state', 'run', 'detail'], rows));
      process.stdout.write(countsLine(statuses));
      // Runs of these files finished under another profile or --set would otherwise go unmentioned.
      if (statuses.some((s) => s.state !== 'finished')) {
        const hints = profileHints(a.files, { sets: a.set, profile: a.profile }, store);
        for (const h of hints) process.stdout.write(`hint: ${h}\n`);
      }
      setCode(exitCodeOf(statuses));
    },
  };
}
