/** sdd schema: the experiment file JSON Schema. */
import type { CommandModule } from 'yargs';
import { experimentJsonSchema } from '../../experiments/schema.js';

export function schemaCommand(_setCode: (c: number) => void): CommandModule {
  return {
    command: 'schema',
    describe: 'print the experiment file JSON Schema (for editor completion)',
    handler: () => {
      process.stdout.write(JSON.stringify(experimentJsonSchema(), null, 2) + '\n');
    },
  };
}
