/** The arguments shared by the commands that plan experiment files (run, plan, status, validate). */
import type { Argv } from 'yargs';

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

/** `<files..>` plus --set/--profile. */
export function withPlanOptions<T>(y: Argv<T>) {
  return y.positional('files', { type: 'string', array: true, demandOption: true }).options(planOptions);
}
