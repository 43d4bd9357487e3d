/** sdd plan: the expanded runs with their ids and state, running nothing. */
import type { CommandModule } from 'yargs';
import type { PlannedRun } from '../../experiments/expand.js';
import { planAll } from '../../experiments/plan.js';
import { RunStore } from '../../runs/store.js';
import { describeRun } from '../../exec/executors.js';
import { modelsChanged } from '../../exec/stale.js';
import { table } from '../table.js';
import { storeFolder } from '../paths.js';
import { withPlanOptions, type PlanArgs } from '../plan_options.js';

/** finished | pending | stale (finished with model weights that have changed since: run redoes it). */
function runState(store: RunStore, r: PlannedRun): string {
  if (!store.isFinished(r.id)) return 'pending';
  const changed = modelsChanged(store, r);
  return changed.length ? `stale (${changed.join(', ')})` : 'finished';
}

/** Also `sdd run --dry-run`'s output. */
export function planTable(runs: PlannedRun[], store: RunStore): string {
  const rows = runs.map((r) => [r.id, runState(store, r), describeRun(r).slice(r.id.length + 1)]);
  return table(['id', 'status', 'run'], rows) + `${runs.length} runs\n`;
}

export function planCommand(_setCode: (c: number) => void): CommandModule<object, PlanArgs & { json: boolean }> {
  return {
    command: 'plan <files..>',
    describe: 'print the expanded runs with their ids, running nothing',
    builder: (y) => withPlanOptions(y).option('json', { type: 'boolean', default: false }) as never,
    handler: (a) => {
      const runs = planAll(a.files, { sets: a.set, profile: a.profile });
      const store = new RunStore(storeFolder(a.store, false));
      if (!a.json) {
        process.stdout.write(planTable(runs, store));
        return;
      }
      const out = runs.map((r) => ({
        id: r.id,
        finished: store.isFinished(r.id),
        models_changed: modelsChanged(store, r),
        backend: r.backend,
        config: r.config,
      }));
      process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    },
  };
}
