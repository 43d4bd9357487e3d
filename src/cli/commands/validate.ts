/** sdd validate: check experiment files without running anything; every error of every file. */
import type { CommandModule } from 'yargs';
import { checkSets } from '../../experiments/overrides.js';
import { checkFiles, type FileCheck } from '../../experiments/validate.js';
import { withPlanOptions, type PlanArgs } from '../plan_options.js';

function okLine(c: FileCheck): string {
  if (c.fragmentOf !== undefined) {
    return `${c.file}: ok (include fragment of ${c.fragmentOf}, checked there as a whole too)`;
  }
  return `${c.file}: ok (${c.runs} run${c.runs === 1 ? '' : 's'})`;
}

export function validateCommand(setCode: (c: number) => void): CommandModule<object, PlanArgs> {
  return {
    command: 'validate <files..>',
    describe:
      'check experiment files (syntax, keys, types, includes) without running anything: every error of every ' +
      'file, one line each; files only included by others given are checked as include fragments',
    builder: (y) => withPlanOptions(y) as never,
    handler: (a) => {
      checkSets(a.set ?? []); // a bad --set is one error, not one per file
      const checks = checkFiles(a.files, { sets: a.set, profile: a.profile });
      for (const c of checks) {
        if (c.errors.length === 0) process.stdout.write(okLine(c) + '\n');
        for (const e of c.errors) process.stderr.write(`sdd: ${e.replace(/\s*\n\s*/g, ' ')}\n`);
      }
      const bad = checks.filter((c) => c.errors.length > 0);
      if (bad.length === 0) return;
      const n = bad.reduce((k, c) => k + c.errors.length, 0);
      process.stdout.write(`${bad.length} of ${checks.length} files with errors (${n} error${n === 1 ? '' : 's'})\n`);
      setCode(2);
    },
  };
}
