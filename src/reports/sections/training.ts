/** Training curves: the per-step scalars of the first runs' metrics.jsonl, and each step's duration. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ReportFigure, ReportSection, ReportView } from '../../methods/report.js';
import { trainingCurves, type CurvePoint } from '../charts.js';

/** The training-curve panel of step durations. */
export const STEP_SECONDS = 'seconds per step';

/** Runs drawn (more lines are unreadable). */
const MAX_RUNS = 12;

/** Times (s since the epoch) at which the run's process started: log.txt's "<ISO time> start …" lines. */
function processStarts(dir: string): number[] {
  const path = join(dir, 'log.txt');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf-8')
    .split('\n')
    .map((l) => /^(\S+) start /.exec(l)?.[1])
    .filter((t): t is string => t !== undefined)
    .map((t) => Date.parse(t) / 1000)
    .filter(Number.isFinite);
}

function readRows(path: string): Array<Record<string, number>> {
  const rows: Array<Record<string, number>> = [];
  for (const line of readFileSync(path, 'utf-8').split('\n')) {
    if (!line.trim()) continue;
    try {
      rows.push(JSON.parse(line) as Record<string, number>);
    } catch {
      // a torn last line of a running run
    }
  }
  return rows;
}

const point = (run: { id: string }, step: number, metric: string, value: number): CurvePoint => ({
  run: run.id,
  step,
  metric,
  value,
});

/** Keys that are no curve: the step, the sampled timestep (noise), the wall clock and the step's duration. */
const NOT_CURVES = ['step', 't', 'time', 'step_s'];

/** Step durations from the wall-clock `time` of consecutive rows, the step across a resume left out. */
function stepSeconds(run: { id: string; dir: string }, rows: Array<Record<string, number>>): CurvePoint[] {
  const out: CurvePoint[] = [];
  const starts = processStarts(run.dir);
  const timed = rows
    .filter((r) => typeof r.step === 'number' && typeof r.time === 'number')
    .sort((a, b) => a.step - b.step);
  for (let i = 1; i < timed.length; i++) {
    const [a, b] = [timed[i - 1], timed[i]];
    const dt = (b.time - a.time) / (b.step - a.step);
    const resumed = starts.some((t) => t > a.time && t <= b.time);
    if (b.step > a.step && dt >= 0 && !resumed) out.push(point(run, b.step, STEP_SECONDS, dt));
  }
  return out;
}

/**
 * Per-step scalars from metrics.jsonl, plus each step's duration. Rows carry the wall-clock `time`
 * they were written at (exec/context.ts), which is no curve to plot; the duration of step k is
 * time(k) − time(k − 1) divided by the steps between them, or a row's own `step_s`. A step whose
 * interval contains a process start (a resume: log.txt's "start" line) is left out, as is the
 * first step (nothing before it). `t` (the sampled timestep) is noise, not a curve.
 */
export function metricLines(run: { id: string; dir: string }): CurvePoint[] {
  const path = join(run.dir, 'metrics.jsonl');
  if (!existsSync(path)) return [];
  const rows = readRows(path);
  const out: CurvePoint[] = [];
  // Panel titles are words: a raw key such as id_loss reads like an interval bound (fid_lo).
  for (const row of rows) {
    for (const [k, v] of Object.entries(row)) {
      if (!NOT_CURVES.includes(k) && typeof v === 'number') out.push(point(run, row.step, k.replace(/_/g, ' '), v));
    }
  }
  for (const row of rows) if (typeof row.step_s === 'number') out.push(point(run, row.step, STEP_SECONDS, row.step_s));
  if (rows.some((r) => typeof r.step_s === 'number')) return out;
  return [...out, ...stepSeconds(run, rows)];
}

export const trainingSection: ReportSection = {
  id: 'training',
  order: 50,
  figures(view: ReportView): ReportFigure[] {
    // Each line named in the legend by its row, prompt and seed (a run id says nothing to a reader).
    const runs = view.groups.flatMap((g) =>
      g.finished.map((r) => ({ r, series: `${g.label} · ${r.prompt} · seed ${r.seed}` })),
    );
    const curves = runs.slice(0, MAX_RUNS).flatMap(({ r, series }) => metricLines(r).map((p) => ({ ...p, series })));
    if (!curves.length) return [];
    const steps = `"${STEP_SECONDS}": time between consecutive steps, the step across a resume left out`;
    const title = `Training curves (metrics.jsonl; ${steps})`;
    return [{ id: 'training', title, spec: trainingCurves(curves, 'training') }];
  },
};
