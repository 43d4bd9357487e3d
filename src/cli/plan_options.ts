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
} as const;

/**
 * --engine for every command that plans runs (run, plan, status, validate, report, regress, hqs):
 * one more --set override, last, so it wins over the file, its profile and an earlier --set engine=….
 */
export function withEngineOption<T>(y: Argv<T>) {
  return y
    .option('engine', {
      type: 'string',
      describe: `what computes the methods: ${[...engineNames(), 'auto'].join(', ')} (the files' engine: key; same as --set engine=…)`,
    })
    .middleware((argv) => {
      if (typeof argv.engine === 'string')
        (argv as { set?: string[] }).set = [...((argv.set as string[] | undefined) ?? []), `engine=${argv.engine}`];
    });
}

/** `<files..>` plus --set/--profile/--engine. */
export function withPlanOptions<T>(y: Argv<T>) {
  return withEngineOption(
    y.positional('files', { type: 'string', array: true, demandOption: true }).options(planOptions),
  );
}
