/**
 * sdd checkpoints [list|verify] — the outside files each world loads, by role: found or missing,
 * size, hash (verify), what each is for and where a user gets it. Paths come from the experiment
 * files given (their `checkpoints:`), over $SDD_CHECKPOINTS.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { UserError } from '../../errors.js';
import { initBackend, backendChoice } from '../../backend/index.js';
import { planAll } from '../../experiments/plan.js';
import { checkWorldFiles, fileRoles, resolveWorldFiles, type WorldFiles } from '../../world/files.js';
import { worldNames } from '../../world/registry.js';
import { sha256File } from '../../util/hash.js';
import { table } from '../table.js';

interface Args {
  action: string;
  files: string[];
  world?: string;
  json: boolean;
  backend?: string;
}

function sizeOf(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((n, f) => n + sizeOf(join(path, f)), 0);
}

const human = (b: number) => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e3).toFixed(1)} kB`);

/** (world, files) pairs to report: from the experiment files, or each world with roles over $SDD_CHECKPOINTS. */
function targets(a: Args): Array<{ world: string; files: WorldFiles; origin: string }> {
  if (a.files.length) {
    const seen = new Map<string, { world: string; files: WorldFiles; origin: string }>();
    for (const r of planAll(a.files, {})) seen.set(`${r.config.world}\0${JSON.stringify(r.files)}`, { world: r.config.world, files: r.files, origin: r.config.experiment });
    return [...seen.values()].filter((t) => Object.keys(fileRoles(t.world)).length);
  }
  const worlds = a.world ? [a.world] : worldNames().filter((w) => Object.keys(fileRoles(w)).length);
  for (const w of worlds) if (!worldNames().includes(w)) throw new UserError(`--world: unknown world '${w}' (have: ${worldNames().join(', ')})`);
  return worlds.map((w) => ({ world: w, files: resolveWorldFiles(w, {}), origin: process.env.SDD_CHECKPOINTS ? `$SDD_CHECKPOINTS=${process.env.SDD_CHECKPOINTS}` : '$SDD_CHECKPOINTS unset' }));
}

export function checkpointsCommand(setCode: (c: number) => void): CommandModule<object, Args> {
  return {
    command: 'checkpoints [action] [files..]',
    describe: 'list: the outside files each world needs (found or missing, size, what for, where to get them); verify: also load each strictly and hash its weights',
    builder: (y) =>
      y
        .positional('action', { choices: ['list', 'verify'] as const, default: 'list' })
        .positional('files', { type: 'string', array: true, default: [], describe: 'experiment files whose checkpoints: to check' })
        .option('world', { type: 'string', describe: 'only this world' })
        .option('json', { type: 'boolean', default: false }) as never,
    handler: async (a) => {
      const verify = a.action === 'verify';
      if (verify) await initBackend(backendChoice(a.backend));
      const rows: Record<string, unknown>[] = [];
      for (const t of targets(a)) {
        for (const s of checkWorldFiles(t.world, t.files)) {
          const status = s.absent ? 'absent (optional)' : s.ok ? 'found' : 'missing';
          const row: Record<string, unknown> = { world: t.world, role: s.role, status, path: s.path, bytes: s.ok && !s.absent ? sizeOf(s.path!) : null, for: s.role_info.describe, get: s.role_info.source, from: t.origin };
          if (!s.ok) row.problem = s.problem;
          if (s.absent) row.problem = `optional: ${s.role_info.optional}`;
          if (verify && s.ok && !s.absent) {
            try {
              row.verified = s.role_info.verify?.(s.path!) ?? 'present';
              if (s.role_info.kind === 'file') row.sha256 = sha256File(s.path!);
            } catch (e) {
              row.status = 'bad';
              row.problem = (e as Error).message.split('\n')[0];
            }
          }
          rows.push(row);
        }
      }
      if (rows.length === 0) throw new UserError('no world with outside files among these (toyfaces ships its own)');
      if (a.json) process.stdout.write(JSON.stringify(rows, null, 1) + '\n');
      else {
        process.stdout.write(table(['world', 'role', 'status', 'size', 'path', verify ? 'check' : 'for'], rows.map((r) => [String(r.world), String(r.role), String(r.status), r.bytes == null ? '-' : human(r.bytes as number), String(r.path ?? '-'), String(verify ? (r.verified ?? r.problem ?? '') : r.for)])));
        for (const r of rows.filter((x) => x.status !== 'found')) process.stdout.write(`${r.world}.${r.role}: ${r.problem}\n  get: ${r.get}\n`);
      }
      setCode(rows.some((r) => r.status === 'missing' || r.status === 'bad') ? 2 : 0);
    },
  };
}
