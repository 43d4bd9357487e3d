/** sdd ls / show / rm / gc over the run store. */
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { RunStore, type RunSummary } from '../../runs/store.js';
import { regressRuns } from '../../regress/sides.js';
import { breakLock, readLock } from '../../runs/lock.js';
import { fmtNumber, table } from '../table.js';
import { storeFolder } from '../paths.js';
import { originFlags, showText } from '../run_details.js';

interface StoreArgs {
  store?: string;
}

function resultCell(s: RunSummary): string {
  if (s.status === 'failed') return (s.error?.message ?? '').slice(0, 60);
  const metrics = (s.result as { metrics?: Record<string, unknown> } | null)?.metrics ?? {};
  return Object.entries(metrics)
    .filter(([, v]) => typeof v === 'number')
    .slice(0, 2)
    .map(([k, v]) => `${k}=${fmtNumber(v)}`)
    .join(' ');
}

function row(s: RunSummary): string[] {
  const point = Object.entries(s.config?.point ?? {}).map(([k, v]) => `${k.split('.').pop()}=${JSON.stringify(v)}`);
  const { profile, overrides } = originFlags(s.origin);
  return [
    s.id,
    s.config?.experiment ?? '?',
    [s.config?.method.name ?? '?', ...point, `seed=${s.config?.seed ?? '?'}`].join(' '),
    s.status,
    profile,
    overrides,
    s.modified.toISOString().slice(0, 16).replace('T', ' '),
    resultCell(s),
  ];
}

const LS_HEADER = ['id', 'experiment', 'run', 'status', 'profile', '--set', 'modified', 'result'];

type SetCode = (c: number) => void;

export function lsCommand(_s: SetCode): CommandModule<object, StoreArgs & { json: boolean; experiment?: string }> {
  return {
    command: 'ls',
    describe: 'list runs in the store, with the profile and --set overrides each ran with',
    builder: (y) =>
      y
        .option('json', { type: 'boolean', default: false })
        .option('experiment', { type: 'string', describe: 'only this experiment' }) as never,
    handler: (a) => {
      const store = new RunStore(storeFolder(a.store, true));
      // sdd regress's sides keep their runs in stores of their own under the root (src/regress/sides.ts).
      const all = [...store.list(), ...regressRuns(store.root)];
      const runs = all.filter((s) => !a.experiment || s.config?.experiment === a.experiment);
      if (a.json) {
        const out = runs.map(({ dir, id, status, config, origin, result, error, modified }) => {
          return { id, dir, status, config, origin, result, error, modified };
        });
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
        return;
      }
      process.stdout.write(table(LS_HEADER, runs.map(row)));
      // '?': runs from before sdd recorded how a run was planned (origin.json).
      if (runs.some((s) => s.origin === null)) process.stdout.write("profile/--set '?': not recorded for that run\n");
    },
  };
}

export function showCommand(_s: SetCode): CommandModule<object, StoreArgs & { run: string; json: boolean }> {
  return {
    command: 'show <run>',
    describe: 'show one run (id or unique id prefix), in sections; --json: the whole record',
    builder: (y) =>
      y
        .positional('run', { type: 'string', demandOption: true })
        .option('json', { type: 'boolean', default: false, describe: 'the whole record as JSON' }) as never,
    handler: (a) => {
      const store = new RunStore(storeFolder(a.store, true));
      const s = store.summary(store.resolveId(a.run));
      const { modified, ...rest } = s;
      if (a.json) {
        process.stdout.write(JSON.stringify({ ...rest, modified }, null, 2) + '\n');
        return;
      }
      process.stdout.write(showText(s));
    },
  };
}

export function rmCommand(_s: SetCode): CommandModule<object, StoreArgs & { runs: string[]; force: boolean }> {
  return {
    command: 'rm <runs..>',
    describe: 'delete runs (refuses running ones unless --force)',
    builder: (y) =>
      y
        .positional('runs', { type: 'string', array: true, demandOption: true })
        .option('force', { type: 'boolean', default: false }) as never,
    handler: (a) => {
      const store = new RunStore(storeFolder(a.store, true));
      const ids = a.runs.map((r) => store.resolveId(r)); // resolve all first: no half-done rm on a typo
      for (const id of ids) {
        store.remove(id, a.force);
        process.stdout.write(`removed ${id}\n`);
      }
    },
  };
}

export function gcCommand(_s: SetCode): CommandModule<object, StoreArgs & { 'dry-run': boolean }> {
  return {
    command: 'gc',
    describe: 'delete partial and failed runs (not running ones), stale locks and leftover temp files',
    builder: (y) => y.option('dry-run', { type: 'boolean', default: false }) as never,
    handler: (a) => {
      const store = new RunStore(storeFolder(a.store, true));
      const act = (what: string, fn: () => void) => {
        process.stdout.write(`${a['dry-run'] ? 'would remove' : 'removed'} ${what}\n`);
        if (!a['dry-run']) fn();
      };
      let n = 0;
      for (const s of store.list()) {
        if (s.status === 'partial' || s.status === 'failed') {
          act(`${s.id} (${s.status})`, () => rmSync(s.dir, { recursive: true, force: true }));
          n++;
          continue;
        }
        const lock = readLock(s.dir);
        if (s.status === 'finished' && lock.held && !lock.alive) {
          act(`${s.id}/lock (stale)`, () => breakLock(s.dir));
          n++;
        }
        for (const f of leftovers(s.dir)) {
          act(`${s.id}/${f}`, () => rmSync(join(s.dir, f), { recursive: true, force: true }));
          n++;
        }
      }
      process.stdout.write(`${n} item${n === 1 ? '' : 's'}\n`);
    },
  };
}

/** Temp files of interrupted atomic writes and lock dirs moved aside, older than a minute. */
function leftovers(dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => {
      if (!(f.endsWith('.tmp') || f.startsWith('lock.stale-'))) return false;
      return Date.now() - statSync(join(dir, f)).mtimeMs > 60_000;
    });
  } catch {
    return [];
  }
}
