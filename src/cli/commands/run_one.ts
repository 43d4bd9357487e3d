/** Hidden command the executor starts for each run, in a child process. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { UserError } from '../../errors.js';
import { backendChoice } from '../../backend/index.js';
import { runOne } from '../../exec/child.js';

export function runOneCommand(setCode: (c: number) => void): CommandModule<object, { dir: string; backend?: string }> {
  return {
    command: '__run-one <dir>',
    describe: false,
    builder: (y) => y.positional('dir', { type: 'string', demandOption: true }) as never,
    handler: async (a) => {
      if (!existsSync(join(a.dir, 'config.json'))) throw new UserError(`${a.dir}: not a run folder (no config.json)`);
      setCode(await runOne(a.dir, backendChoice(a.backend)));
      // The IPC channel keeps the event loop alive; close it so the process can end.
      if (process.connected) process.disconnect();
    },
  };
}
