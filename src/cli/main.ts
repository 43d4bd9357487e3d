/** The `sdd` command line. Each command's handler lives in src/cli/commands/. */
import { regressCommand } from './commands/regress.js';
import { hqsCommand } from './commands/hqs.js';
import { reportCommand } from './commands/report.js';
import yargs, { type Argv } from 'yargs';
import { UserError } from '../errors.js';
import { BACKEND_CHOICES, BackendChoiceError } from '../backend/index.js';
import { registerBuiltinMethods } from '../methods/index.js';
import { runCommand, planCommand, validateCommand, schemaCommand } from './commands/experiments.js';
import { lsCommand, showCommand, rmCommand, gcCommand } from './commands/store.js';
import { doctorCommand } from './commands/doctor.js';
import { runOneCommand } from './commands/run_one.js';
import { zooCommand } from './commands/zoo.js';
import { worldCommand } from './commands/world.js';
import { fidCommand } from './commands/fid.js';

function common<T>(y: Argv<T>) {
  return y
    .option('store', { type: 'string', describe: 'run store directory (default: $SDD_RUNS or ./runs)' })
    .option('backend', { choices: BACKEND_CHOICES, describe: 'compute backend (default: $SDD_BACKEND or auto)' });
}

export async function main(argv: string[]): Promise<number> {
  registerBuiltinMethods();
  let exitCode = 0;
  const setCode = (c: number) => {
    exitCode = c;
  };
  const cli = common(yargs(argv))
    .scriptName('sdd')
    .strict()
    .recommendCommands()
    .demandCommand(1, 'name a command (sdd --help lists them)')
    .command(runCommand(setCode))
    .command(planCommand(setCode))
    .command(validateCommand(setCode))
    .command(schemaCommand(setCode))
    .command(lsCommand(setCode))
    .command(showCommand(setCode))
    .command(rmCommand(setCode))
    .command(gcCommand(setCode))
    .command(doctorCommand(setCode))
    .command(zooCommand(setCode))
    .command(worldCommand(setCode))
    .command(fidCommand(setCode))
    .command(reportCommand())
    .command(hqsCommand())
    .command(regressCommand(setCode))
    .command(runOneCommand(setCode))
    .help()
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new UserError(msg);
    });
  try {
    await cli.parseAsync();
    return exitCode;
  } catch (e) {
    if (e instanceof UserError || e instanceof BackendChoiceError) {
      process.stderr.write(`sdd: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
