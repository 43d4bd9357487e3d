/** sdd validate: check experiment files without running anything. */
import type { CommandModule } from 'yargs';
import { planAll } from '../../experiments/plan.js';
import { withPlanOptions, type PlanArgs } from '../plan_options.js';

export function validateCommand(_setCode: (c: number) => void): CommandModule<object, PlanArgs> {
  return {
    command: 'validate <files..>',
    describe: 'check experiment files (syntax, keys, types, includes) without running anything',
    builder: (y) => withPlanOptions(y) as never,
    handler: (a) => {
      for (const f of a.files) {
        const runs = planAll([f], { sets: a.set, profile: a.profile });
        process.stdout.write(`${f}: ok (${runs.length} run${runs.length === 1 ? '' : 's'})\n`);
      }
    },
  };
}
