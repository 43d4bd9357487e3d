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

const human = (b: number) =>
  b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e3).toFixed(1)} kB`;

type Target = { world: string; files: WorldFiles; origin: string };

/** (world, files) pairs to report: from the experiment files, or each world with roles over $SDD_CHECKPOINTS. */
function targets(a: Args): Target[] {
  if (a.files.length) {
    const seen = new Map<string, Target>();
    for (const r of planAll(a.files, {})) {
      const target = { world: r.config.world, files: r.files, origin: r.config.experiment };
      seen.set(`${r.config.world}\0${JSON.stringify(r.files)}`, target);
    }
    return [...seen.values()].filter((t) => Object.keys(fileRoles(t.world)).length);
  }
  const names = worldNames();
  const worlds = a.world ? [a.world] : names.filter((w) => Object.keys(fileRoles(w)).length);
  for (const w of worlds) {
    if (!names.includes(w)) throw new UserError(`--world: unknown world '${w}' (have: ${names.join(', ')})`);
  }
  const env = process.env.SDD_CHECKPOINTS;
  const origin = env ? `$SDD_CHECKPOINTS=${env}` : '$SDD_CHECKPOINTS unset';
  return worlds.map((w) => ({ world: w, files: resolveWorldFiles(w, {}), origin }));
}

type Row = Record<string, unknown>;

/** One row per role of the target's world; `verify` also loads each file strictly and hashes it. */
function rowsOf(t: Target, verify: boolean): Row[] {
  return checkWorldFiles(t.world, t.files).map((s) => {
    const status = s.absent ? 'absent (optional)' : s.ok ? 'found' : 'missing';
    const bytes = s.ok && !s.absent ? sizeOf(s.path!) : null;
    const row: Row = { world: t.world, role: s.role, status, path: s.path, bytes };
    Object.assign(row, { for: s.role_info.describe, get: s.role_info.source, from: t.origin });
    if (!s.ok) row.problem = s.problem;
    if (s.absent) row.problem = `optional: ${s.role_info.optional}`;
    if (!verify || !s.ok || s.absent) return row;
    try {
      row.verified = s.role_info.verify?.(s.path!) ?? 'present';
      if (s.role_info.kind === 'file') row.sha256 = sha256File(s.path!);
    } catch (e) {
      row.status = 'bad';
      row.problem = (e as Error).message.split('\n')[0];
    }
    return row;
  });
}

function printRows(rows: Row[], verify: boolean): void {
  const cells = rows.map((r) => [
    String(r.world),
    String(r.role),
    String(r.status),
    r.bytes == null ? '-' : human(r.bytes as number),
    String(r.path ?? '-'),
    String(verify ? (r.verified ?? r.problem ?? '') : r.for),
  ]);
  process.stdout.write(table(['world', 'role', 'status', 'size', 'path', verify ? 'check' : 'for'], cells));
  for (const r of rows.filter((x) => x.status !== 'found')) {
    process.stdout.write(`${r.world}.${r.role}: ${r.problem}\n  get: ${r.get}\n`);
  }
}

export function checkpointsCommand(setCode: (c: number) => void): CommandModule<object, Args> {
  return {
    command: 'checkpoints [action] [files..]',
    describe:
      'list: the outside files each world needs (found or missing, size, what for, where to get them); ' +
      'verify: also load each strictly and hash its weights (exit 1 if any is missing or bad)',
    builder: (y) =>
      y
        .positional('action', { choices: ['list', 'verify'] as const, default: 'list' })
        .positional('files', {
          type: 'string',
          array: true,
          default: [],
          describe: 'experiment files whose checkpoints: to check',
        })
        .option('world', { type: 'string', describe: 'only this world' })
        .option('json', { type: 'boolean', default: false }) as never,
    handler: async (a) => {
      const verify = a.action === 'verify';
      if (verify) await initBackend(backendChoice(a.backend));
      const rows = targets(a).flatMap((t) => rowsOf(t, verify));
      if (rows.length === 0) throw new UserError('no world with outside files among these (toyfaces ships its own)');
      if (a.json) process.stdout.write(JSON.stringify(rows, null, 1) + '\n');
      else printRows(rows, verify);
      // list answers a question (exit 0 whatever it finds); verify is a check: 1 when it fails. Bad
      // input (an unknown world, a bad experiment file) stays 2, thrown above.
      setCode(verify && rows.some((r) => r.status === 'missing' || r.status === 'bad') ? 1 : 0);
    },
  };
}
