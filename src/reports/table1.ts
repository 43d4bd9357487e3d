/**
 * The paper's Table 1 layout (on every page with FID and the directional CLIP, headed by what it
 * shows, not "Table 1"): rows = methods; FID ↓, CLIP similarity ↑ (the directional CLIP) with
 * the method-level intervals, and the total time of Eq. 13–14 at m = 100, n = 10 from the measured
 * τ_train (s per prompt) and τ_infer (s per image), means over the runs.
 */
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { metricLabel, metricSpec } from '../metrics/registry.js';
import { totalTime } from '../metrics/total_time.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { Table } from './html.js';
import type { PageContext } from './groups.js';
import { LEVEL } from './intervals.js';
import { ciCells, groupFlag, metricNotes, withCi, type Cell } from './tables.js';

/** Table 1's time column: Eq. 13–14 at the paper's m = 100 images for each of n = 10 prompts. */
const TABLE1_M = 100;
const TABLE1_N = 10;

const note = (how: string, scope: string) =>
  `The paper's Table 1 layout. CLIP similarity is the directional CLIP. ${how}; ${LEVEL * 100}% CI in brackets. ` +
  `Measured here: ${scope}. The total time is extrapolated to the paper's m = ${TABLE1_M} images per prompt and ` +
  `n = ${TABLE1_N} prompts: n·τ_train + m·n·τ_infer (Eq. 13–14; 0 training for SDEdit and DDIB), from the measured ` +
  'τ_train per prompt and τ_infer per image (means over runs; no interval).';

/** How the page's τ were measured, from the runs' own records (metrics.timing, #30's protocol). */
function timingNote(ctx: PageContext): string {
  type Timing = Record<string, TimingRecord>;
  const timings = ctx.finished.map(({ r }) => (r.result?.metrics as { timing?: Timing } | undefined)?.timing);
  const calibrated = timings.filter((t): t is Timing => t !== undefined);
  if (calibrated.length === 0) {
    return ' τ here is wall time, measured while other runs may have shared the machine (runs made before the calibrated protocol).';
  }
  const records = calibrated.flatMap((t) => Object.entries(t));
  const ks = new Map<string, Set<number>>();
  for (const [phase, x] of records) if (x.k !== undefined) ks.set(phase, (ks.get(phase) ?? new Set()).add(x.k));
  const kText = [...ks].map(([phase, k]) => `${phase} ${[...k].join('/')}`).join(', ');
  const clocks = [...new Set(records.flatMap(([, x]) => (x.clock ? [x.clock] : [])))].join(' / ') || 'wall';
  const unheld = records.some(([, x]) => x.lock_held === false);
  const oldRuns = timings.length - calibrated.length;
  const older = oldRuns ? ` (${oldRuns} older runs: wall time)` : '';
  return (
    ` τ = units × the median of k calibration units (k: ${kText}) timed under an exclusive lock on the device` +
    ` (${clocks} time), so it does not depend on how many runs shared the machine${older}` +
    (unheld ? '; in some runs the lock could not be had in time and τ was timed without it.' : '.')
  );
}

interface TimingRecord {
  k?: number;
  clock?: string;
  lock_held?: boolean;
}

const CSV_HEAD = [
  'method',
  ...['fid', 'clip_directional'].flatMap((m) => [m, `${m}_ci95_lo`, `${m}_ci95_hi`]),
  `total_time_s_m${TABLE1_M}_n${TABLE1_N}`,
  'interval',
];

function rowsOf(ctx: PageContext) {
  return ctx.groups.flatMap((g) => {
    const f = ctx.sums.method(g, 'fid');
    const c = ctx.sums.method(g, 'clip_directional');
    if (!f || !c) return [];
    const tr = ctx.sums.method(g, 'tau_train_s');
    const inf = ctx.sums.method(g, 'tau_infer_s');
    const total = tr && inf ? totalTime({ train_s: tr.mean, infer_s: inf.mean }, TABLE1_M, TABLE1_N) : null;
    return [{ g, f, c, total }];
  });
}

/** Table 1 (and table1_paper.csv), or null when no group has FID and the directional CLIP. */
export function table1(ctx: PageContext, scope: string): Table | null {
  const rows = rowsOf(ctx);
  if (!rows.length) return null;
  const how = `FID: ${rows[0].f.interval}; CLIP similarity: ${rows[0].c.interval}`;
  const csvRows = rows.map(({ g, f, c, total }): Cell[] => [g.label, ...ciCells(f), ...ciCells(c), total, how]);
  writeFileAtomic(join(ctx.dir, 'table1_paper.csv'), stringify([CSV_HEAD, ...csvRows]));
  const flags = rows.map(({ g }) => groupFlag(ctx, g));
  return {
    title: 'FID, CLIP similarity and total time',
    columns: [
      'method',
      metricLabel('fid'),
      `CLIP similarity (${metricSpec('clip_directional')?.unit ?? 'cos'}) ↑`,
      `total time (s) at m = ${TABLE1_M}, n = ${TABLE1_N} ↓`,
    ],
    rows: rows.map(({ g, f, c, total }) => [g.label, withCi(f), withCi(c), total === null ? null : { v: total }]),
    csv: 'table1_paper.csv',
    note: note(how, scope) + timingNote(ctx),
    notes: metricNotes([], flags),
    flags,
  };
}
