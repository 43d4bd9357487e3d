/**
 * The `sdd` command line. Each command's handler lives in src/cli/commands/; only the invoked
 * command's module is imported (the report renderer alone takes seconds to load), all of them
 * for --help or an unknown name.
 *
 * Every expected failure (bad flags, paths, refs, files) leaves as one line `sdd: <where>: <what>`
 * and exit code 2; only an internal bug may print a stack.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yargs, { type Argv, type CommandModule } from 'yargs';
import { PROJECT_ROOT } from '../util/env.js';
import { RunFailedError, UserError } from '../errors.js';
import { BACKEND_CHOICES, BackendChoiceError, shutdownBackend } from '../backend/index.js';

type SetCode = (c: number) => void;
// Each command module types its own arguments; yargs only needs them as command modules.
type Loader = (s: SetCode) => Promise<CommandModule<object, never>>;
// Each command module has its own args type; yargs' command() takes them all as one list.
const cmd = <T>(m: T) => m as unknown as CommandModule<object, never>;

/** Command name → its module, in --help order. */
const COMMANDS: Array<[string, Loader]> = [
  ['run', async (s) => cmd((await import('./commands/run.js')).runCommand(s))],
  ['plan', async (s) => cmd((await import('./commands/plan.js')).planCommand(s))],
  ['status', async (s) => cmd((await import('./commands/status.js')).statusCommand(s))],
  ['validate', async (s) => cmd((await import('./commands/validate.js')).validateCommand(s))],
  ['schema', async (s) => cmd((await import('./commands/schema.js')).schemaCommand(s))],
  ['ls', async (s) => cmd((await import('./commands/store.js')).lsCommand(s))],
  ['show', async (s) => cmd((await import('./commands/store.js')).showCommand(s))],
  ['rm', async (s) => cmd((await import('./commands/store.js')).rmCommand(s))],
  ['gc', async (s) => cmd((await import('./commands/store.js')).gcCommand(s))],
  ['doctor', async (s) => cmd((await import('./commands/doctor.js')).doctorCommand(s))],
  ['zoo', async (s) => cmd((await import('./commands/zoo.js')).zooCommand(s))],
  ['world', async (s) => cmd((await import('./commands/world.js')).worldCommand(s))],
  ['checkpoints', async (s) => cmd((await import('./commands/checkpoints.js')).checkpointsCommand(s))],
  ['fid', async (s) => cmd((await import('./commands/fid.js')).fidCommand(s))],
  ['report', async () => cmd((await import('./commands/report.js')).reportCommand())],
  ['hqs', async () => cmd((await import('./commands/hqs.js')).hqsCommand())],
  ['regress', async (s) => cmd((await import('./commands/regress.js')).regressCommand(s))],
  ['__run-one', async (s) => cmd((await import('./commands/run_one.js')).runOneCommand(s))],
];

/** Commands that read experiment files, and so need the method registry (the others skip loading it). */
const USE_METHODS = new Set(['run', 'plan', 'status', 'validate', 'schema', 'report', 'hqs', 'regress', 'checkpoints']);

/** Global options that take a value: the word after them is not the command. */
const VALUE_OPTIONS = new Set(['--store', '--backend']);

/** The commands to register: the one named by the first positional word, or all (none for --version). */
function wanted(argv: string[]): Array<[string, Loader]> {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (VALUE_OPTIONS.has(a)) i++;
    else if (a === '--help' || a === '-h') return COMMANDS;
    else if (a === '--version') return [];
    else if (!a.startsWith('-')) {
      const hit = COMMANDS.find(([name]) => name === a);
      return hit ? [hit] : COMMANDS;
    }
  }
  return COMMANDS;
}

/** package.json's version (the offline bundle writes its own package.json, with it, beside sdd.mjs). */
function sddVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf-8')) as { version?: string };
    return pkg.version ?? '?';
  } catch {
    return '?';
  }
}

function common<T>(y: Argv<T>) {
  return y
    .option('store', { type: 'string', describe: 'run store directory (default: $SDD_RUNS or ./runs)' })
    .option('backend', { choices: BACKEND_CHOICES, describe: 'compute backend (default: $SDD_BACKEND or auto)' });
}

const AN_EXPERIMENT = 'name an experiment file (e.g. experiments/toy_sweep.yaml; several may follow)';
const A_RUN = 'name a run: its id or a unique prefix of it (`sdd ls` lists them)';

/** What to name when a command's required positional is missing. */
const MISSING: Record<string, string> = {
  run: AN_EXPERIMENT,
  plan: AN_EXPERIMENT,
  status: AN_EXPERIMENT,
  validate: 'name the experiment files to check (e.g. experiments/*.yaml experiments/*/*.yaml)',
  report: AN_EXPERIMENT,
  hqs: 'name an experiment file with SDD runs (e.g. experiments/ablation.yaml)',
  regress: 'name an experiment file (e.g. experiments/regression.yaml)',
  show: A_RUN,
  rm: A_RUN,
  fid: 'name two image folders or .npz files (e.g. sdd fid A/ B/)',
  world: 'name an action (grid or manifest)',
  zoo: 'name an action (verify, eval, train or grid)',
  '__run-one': 'name a run folder',
};

/**
 * yargs' own wording for a missing positional ("Not enough non-option arguments: got 0, need at
 * least 1") names neither the command nor what to give: this line does both.
 */
function failureLine(msg: string, commands: Array<[string, Loader]>): string {
  if (!/^Not enough non-option arguments/.test(msg)) return msg;
  const name = commands.length === 1 ? commands[0][0] : undefined;
  if (name === undefined) return msg;
  return `${name}: ${MISSING[name] ?? `a required argument is missing (sdd ${name} --help)`}`;
}

const SYSTEM_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  EISDIR: 'is a folder, expected a file',
  ENOTDIR: 'a part of the path is not a folder',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EEXIST: 'already exists',
  ENOTEMPTY: 'folder not empty',
  ENOSPC: 'no space left on the device',
  EROFS: 'read-only file system',
  ENAMETOOLONG: 'name too long',
};

/**
 * The one line for an expected failure, or null for an internal bug. A file-system error on a
 * path the user gave (or one derived from it) names that path and what is wrong with it.
 */
function userMessage(e: unknown): string | null {
  const expected = e instanceof UserError || e instanceof RunFailedError || e instanceof BackendChoiceError;
  if (expected || (e instanceof Error && e.name === 'NpyError')) return (e as Error).message;
  const sys = e as NodeJS.ErrnoException;
  if (sys instanceof Error && typeof sys.code === 'string' && SYSTEM_ERRORS[sys.code] && typeof sys.path === 'string') {
    const to = (e as { dest?: unknown }).dest;
    const dest = typeof to === 'string' ? ` → ${to}` : '';
    return `${sys.path}${dest}: ${SYSTEM_ERRORS[sys.code]}`;
  }
  return null;
}

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const setCode = (c: number) => {
    exitCode = c;
  };
  try {
    const commands = wanted(argv);
    if (commands.some(([name]) => USE_METHODS.has(name))) {
      (await import('../methods/index.js')).registerBuiltinMethods();
    }
    let cli = common(yargs(argv))
      .scriptName('sdd')
      .strict()
      .recommendCommands()
      .demandCommand(1, 'name a command (sdd --help lists them)');
    for (const [, load] of commands) cli = cli.command(await load(setCode));
    cli = cli
      .help()
      .version(sddVersion())
      .wrap(Math.min(110, process.stdout.columns || 100))
      .exitProcess(false)
      .fail((msg, err) => {
        throw err ?? new UserError(failureLine(msg, commands));
      });
    await cli.parseAsync();
    return exitCode;
  } catch (e) {
    const msg = userMessage(e);
    if (msg === null) throw e;
    process.stderr.write(`sdd: ${msg.replace(/\s*\n\s*/g, ' ')}\n`);
    return e instanceof RunFailedError ? 1 : 2;
  } finally {
    shutdownBackend();
  }
}
