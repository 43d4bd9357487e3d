/** sdd ls / show / rm / gc over the run store. */
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { RunStore, type RunSummary } from '../../runs/store.js';
import { breakLock, readLock } from '../../runs/lock.js';
import { fmtNumber, table } from '../table.js';
import { storeFolder } from '../paths.js';

interface StoreArgs {
  store?: string;
}

function row(s: RunSummary): string[] {
  const metrics = ((s.result as { metrics?: Record<string, unknown> } | null)?.metrics ?? {}) as Record<string, unknown>;
  const point = Object.entries(s.config?.point ?? {}).map(([k, v]) => `${k.split('.').pop()}=${JSON.stringify(v)}`);
  return [
    s.id,
    s.config?.experiment ?? '?',
    [s.config?.method.name ?? '?', ...point, `seed=${s.config?.seed ?? '?'}`].join(' '),
    s.status,
    s.modified.toISOString().slice(0, 16).replace('T', ' '),
    s.status === 'failed'
      ? (s.error?.message ?? '').slice(0, 60)
      : Object.entries(metrics)
          .filter(([, v]) => typeof v === 'number')
          .slice(0, 2)
          .map(([k, v]) => `${k}=${fmtNumber(v)}`)
          .join(' '),
  ];
}

export function lsCommand(_s: (c: number) => void): CommandModule<object, StoreArgs & { json: boolean; experiment?: string }> {
  return {
    command: 'ls',
    describe: 'list runs in the store',
    builder: (y) =>
      y.option('json', { type: 'boolean', default: false }).option('experiment', { type: 'string', describe: 'only this experiment' }) as never,
    handler: (a) => {
      const runs = new RunStore(storeFolder(a.store, true)).list().filter((s) => !a.experiment || s.config?.experiment === a.experiment);
      if (a.json) {
        const out = runs.map(({ dir, id, status, config, result, error, modified }) => ({ id, dir, status, config, result, error, modified }));
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
        return;
      }
      process.stdout.write(table(['id', 'experiment', 'run', 'status', 'modified', 'result'], runs.map(row)));
    },
  };
}

export function showCommand(_s: (c: number) => void): CommandModule<object, StoreArgs & { run: string; json: boolean }> {
  return {
    command: 'show <run>',
    describe: 'show one run (id or unique id prefix)',
    builder: (y) => y.positional('run', { type: 'string', demandOption: true }).option('json', { type: 'boolean', default: false }) as never,
    handler: (a) => {
      const store = new RunStore(storeFolder(a.store, true));
      const s = store.summary(store.resolveId(a.run));
      const { modified, ...rest } = s;
      if (a.json) {
        process.stdout.write(JSON.stringify({ ...rest, modified }, null, 2) + '\n');
        return;
      }
      const lines = [
        `run        ${s.id}  (${s.status})`,
        `dir        ${s.dir}`,
        `experiment ${s.config?.experiment} v${s.config?.experiment_version}`,
        `method     ${s.config?.method.name} v${s.config?.method.version} ${JSON.stringify(s.config?.method.params)}`,
        `seed       ${s.config?.seed}`,
      ];
      const env = s.env as { git?: { sha: string; dirty: boolean }; backend?: { choice: string } } | null;
      if (env) lines.push(`git        ${env.git?.sha?.slice(0, 10) ?? '?'}${env.git?.dirty ? ' (dirty)' : ''}`, `backend    ${env.backend?.choice}`);
      if (s.result) lines.push(`result     ${JSON.stringify((s.result as { metrics: unknown }).metrics)}`);
      if (s.error) lines.push(`error      ${s.error.kind ?? ''}: ${s.error.message}`);
      process.stdout.write(lines.join('\n') + '\n');
    },
  };
}

export function rmCommand(_s: (c: number) => void): CommandModule<object, StoreArgs & { runs: string[]; force: boolean }> {
  return {
    command: 'rm <runs..>',
    describe: 'delete runs (refuses running ones unless --force)',
    builder: (y) => y.positional('runs', { type: 'string', array: true, demandOption: true }).option('force', { type: 'boolean', default: false }) as never,
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

export function gcCommand(_s: (c: number) => void): CommandModule<object, StoreArgs & { 'dry-run': boolean }> {
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
