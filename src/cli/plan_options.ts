/** The arguments shared by the commands that plan experiment files (run, plan, status, validate). */
import type { Argv } from 'yargs';
import { engineNames } from '../methods/engine.js';

export interface PlanArgs {
  files: string[];
  set?: string[];
  profile?: string;
  store?: string;
  backend?: string;
}

const planOptions = {
  set: { type: 'string', array: true, describe: 'override a key: a.b.c=value (repeatable)' },
  profile: { type: 'string', describe: 'apply a named profile from the file (e.g. quick)' },
  engine: { type: 'string', describe: `what computes the methods: ${[...engineNames(), 'auto'].join(', ')} (the files' engine: key; same as --set engine=…)` },
} as const;

/** `<files..>` plus --set/--profile. */
export function withPlanOptions<T>(y: Argv<T>) {
  return y
    .positional('files', { type: 'string', array: true, demandOption: true })
    .options(planOptions)
    .middleware((argv) => {
      // One more override, last: it wins over the file, its profile and earlier --set engine=….
      if (typeof argv.engine === 'string') (argv as { set?: string[] }).set = [...(argv.set ?? []), `engine=${argv.engine}`];
    });
}
