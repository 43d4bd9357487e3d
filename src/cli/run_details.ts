/**
 * `sdd show RUN` for people: the run, how it was planned, the method's parameters, provenance and
 * the result in sections, nested values indented as YAML (`--json` keeps the whole record for
 * machines).
 */
import { relative } from 'node:path';
import { stringify } from 'yaml';
import type { RunOrigin } from '../experiments/expand.js';
import type { RunSummary } from '../runs/store.js';
import { fmtNumber } from './table.js';

const INDENT = '  ';

/** `key  value` lines, keys padded to one width. */
function fields(rows: Array<[string, string]>): string[] {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${INDENT}${k.padEnd(w)}  ${v}`);
}

/** A nested value as indented YAML lines. */
function yamlLines(v: unknown, depth = 1): string[] {
  const text = stringify(v, { lineWidth: 100 }).trimEnd();
  return text.split('\n').map((l) => INDENT.repeat(depth) + l);
}

/** How the run was planned: `--profile quick --set a=1`, `(no profile or --set)`, or unknown. */
export function originFlags(o: RunOrigin | null): { profile: string; overrides: string } {
  if (!o) return { profile: '?', overrides: '?' };
  return { profile: o.profile ?? '-', overrides: o.sets.length ? o.sets.join(' ') : '-' };
}

function runSection(s: RunSummary): string[] {
  const c = s.config;
  const rows: Array<[string, string]> = [
    ['status', s.status],
    ['dir', s.dir],
    ['modified', s.modified.toISOString().slice(0, 19).replace('T', ' ')],
    ['experiment', c ? `${c.experiment} v${c.experiment_version}` : '?'],
    ['world', c?.world ?? '?'],
    ['seed', String(c?.seed ?? '?')],
  ];
  const point = Object.entries(c?.point ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  if (point.length) rows.push(['sweep point', point.join(' ')]);
  if (s.origin) {
    const { profile, overrides } = originFlags(s.origin);
    const file = relative(process.cwd(), s.origin.file) || s.origin.file;
    rows.push(['file', file], ['profile', profile], ['--set', overrides]);
  } else rows.push(['planned as', '? (not recorded: run before sdd recorded profiles and overrides)']);
  return [`run ${s.id}`, ...fields(rows)];
}

function methodSection(s: RunSummary): string[] {
  const m = s.config?.method;
  if (!m) return [];
  return ['', `method ${m.name} v${m.version}`, ...yamlLines(m.params)];
}

function provenanceSection(s: RunSummary): string[] {
  const env = s.env as {
    git?: { sha: string | null; dirty: boolean | null };
    backend?: { choice?: string; tfName?: string };
    machine?: { host?: string; cpu?: string; cores?: number; node?: string };
  } | null;
  if (!env) return [];
  const git = env.git?.sha ? `${env.git.sha.slice(0, 10)}${env.git.dirty ? ' (dirty)' : ''}` : '?';
  const m = env.machine;
  const machine = m ? `${m.host ?? '?'}: ${m.cpu ?? '?'}, ${m.cores ?? '?'} cores, Node ${m.node ?? '?'}` : '?';
  return [
    '',
    'provenance',
    ...fields([
      ['git', git],
      ['backend', env.backend?.choice ?? '?'],
      ['machine', machine],
    ]),
  ];
}

/** Scalars one a line (with their interval when the result has one), anything nested as YAML. */
function resultSection(s: RunSummary): string[] {
  if (!s.result) return [];
  const r = s.result as { metrics?: Record<string, unknown>; wall_s?: number };
  const metrics = r.metrics ?? {};
  const ci = (metrics.ci ?? {}) as Record<string, unknown>;
  const scalars: Array<[string, string]> = [];
  const nested: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metrics)) {
    if (k === 'ci') continue;
    if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' || v === null) {
      const iv = ci[k];
      const interval = Array.isArray(iv) ? `  [${iv.map(fmtNumber).join(', ')}]` : '';
      scalars.push([k, `${typeof v === 'number' ? fmtNumber(v) : String(v)}${interval}`]);
    } else nested[k] = v;
  }
  if (typeof r.wall_s === 'number') scalars.push(['wall time', `${fmtNumber(r.wall_s)} s`]);
  const level = typeof ci.level === 'number' ? ` (intervals at ${ci.level * 100}%)` : '';
  const out = ['', `result${level}`, ...fields(scalars)];
  for (const [k, v] of Object.entries(nested)) out.push(`${INDENT}${k}:`, ...yamlLines(v, 2));
  return out;
}

export function showText(s: RunSummary): string {
  const e = s.error;
  const kind = `${e?.kind ?? 'error'}${e?.bad_input ? ', bad input' : ''}`;
  const error = e ? ['', `error (${kind})`, `${INDENT}${e.message}`] : [];
  const lines = [...runSection(s), ...methodSection(s), ...provenanceSection(s), ...resultSection(s), ...error];
  return lines.join('\n') + '\n';
}
