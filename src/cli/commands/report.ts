/** sdd report — Vega-Lite report pages for experiments, from the run store. */
import { withEngineOption } from '../plan_options.js';
import type { CommandModule } from 'yargs';
import { resolve } from 'node:path';
import { UserError } from '../../errors.js';
import { RunStore } from '../../runs/store.js';
import { screenshot } from '../../util/chromium.js';
import { outputFile, outputFolder, storeFolder } from '../paths.js';
import { planAll } from './experiments.js';

interface ReportArgs {
  files: string[];
  out?: string;
  store?: string;
  set?: string[];
  profile?: string;
  combine?: string;
  screenshot?: string;
}

const COMBINE = 'one page of this name for all the files (e.g. table1)';
const SCREENSHOT = 'also write a PNG screenshot of the (first) page (needs chromium)';

export function reportCommand(): CommandModule<object, ReportArgs> {
  return {
    command: 'report <files..>',
    describe: 'write report pages (tables, charts, grids) for experiment files',
    builder: (y) =>
      withEngineOption(y)
        .positional('files', { type: 'string', array: true, demandOption: true })
        .option('out', { type: 'string', describe: 'output folder (default: $SDD_REPORTS or ./reports)' })
        .option('set', { type: 'string', array: true, describe: 'override a key: a.b.c=value (repeatable)' })
        .option('profile', { type: 'string', describe: 'the profile the runs used (e.g. quick)' })
        .option('screenshot', { type: 'string', describe: SCREENSHOT })
        .option('combine', { type: 'string', describe: COMBINE }) as never,
    handler: async (a) => {
      const t0 = performance.now();
      if (a.out !== undefined) outputFolder('--out', a.out);
      if (a.screenshot !== undefined) outputFile('--screenshot', a.screenshot);
      const store = new RunStore(storeFolder(a.store, false));
      planAll(a.files, { sets: a.set, profile: a.profile }); // bad files fail before anything is written
      // Imported here: the renderer takes seconds to load, and bad input should fail before that.
      const { buildReport, reportOut } = await import('../../reports/build.js');
      const opts = { sets: a.set, profile: a.profile };
      const { pages, skipped, index } = await buildReport(a.files, opts, store, reportOut(a.out), a.combine);
      // Only the pages written now; a page without finished runs is left as it was.
      for (const p of pages) process.stdout.write(`${p.name}: ${p.finished}/${p.runs} runs → ${p.path}\n`);
      for (const s of skipped)
        process.stdout.write(`${s}: no finished runs${a.profile ? '' : ' (ran with --profile?)'}, page not written\n`);
      if (a.screenshot && !pages[0]) throw new UserError(`--screenshot: no page was written (no finished runs)`);
      if (a.screenshot && pages[0]) {
        // The top of the page at a 1400 px viewport: title, caption and the first tables.
        screenshot(`file://${pages[0].path}`, resolve(a.screenshot), 1400, 1300);
        process.stdout.write(`screenshot → ${a.screenshot}\n`);
      }
      process.stdout.write(`index → ${index} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
    },
  };
}
