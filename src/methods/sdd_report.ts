/**
 * SDD's parts of report pages (src/methods/report.ts): its selected set S as two table columns and
 * the HQS curves of its scans (paper Fig. 4).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { NUMBER_FORMAT as F, SPEC_TOP } from '../util/charts.js';
import { minMax } from '../util/normalize.js';
import type { ReportFigure, ReportRun, ReportSection, ReportView } from './report.js';

/** S as |S| and its mean HQS (Table 3 compares the selection strategies by them). */
export function selectionValues(metrics: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const sel = metrics.selection as { size?: unknown; mean_hqs?: unknown } | undefined;
  return sel ? { selection_size: sel.size, mean_hqs: sel.mean_hqs } : {};
}

export interface HqsPoint {
  series: string; // prompt
  t: number;
  N: number;
  H: number;
  hqs: number;
  selected: boolean;
}

/** Normalised N̄, H̄ and HQS over t per prompt, selected timesteps marked (paper Fig. 4). */
export function hqsCurves(points: HqsPoint[], title: string): TopLevelSpec {
  const axes = { x: { field: 't', type: 'quantitative' }, y: { field: 'value', type: 'quantitative' } } as const;
  return {
    ...SPEC_TOP, // faceted: sizes go on the inner spec
    title,
    data: { values: points },
    transform: [{ fold: ['N', 'H', 'hqs'], as: ['quantity', 'value'] }],
    facet: { field: 'series', type: 'nominal', title: null },
    columns: 3,
    spec: {
      width: 240,
      height: 150,
      layer: [
        {
          mark: { type: 'line', point: false },
          encoding: {
            x: { ...axes.x, title: 'timestep t' },
            y: { ...axes.y, title: 'normalised value' },
            color: { field: 'quantity', type: 'nominal', title: 'quantity' },
          },
        },
        {
          transform: [{ filter: 'datum.selected && datum.quantity === "hqs"' }],
          mark: { type: 'point', filled: true, size: 50, color: 'black' },
          encoding: {
            x: { ...axes.x, title: 'timestep t' },
            y: { ...axes.y, title: 'normalised value' },
            tooltip: [{ field: 't' }, { field: 'value', title: 'HQS', format: F }],
          },
        },
      ],
    },
  };
}

function readCsv(path: string): Array<Record<string, number>> {
  const [head, ...lines] = readFileSync(path, 'utf-8').trim().split('\n');
  const cols = head.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], Number(v)])));
}

/** One curve per prompt, from the first run of it that wrote artifacts/hqs.csv. */
function hqsPoints(runs: readonly ReportRun[]): HqsPoint[] {
  const points: HqsPoint[] = [];
  for (const r of runs) {
    const csv = join(r.dir, 'artifacts', 'hqs.csv');
    if (!existsSync(csv) || points.some((p) => p.series === r.values.prompt)) continue;
    const selection = r.values.selection as { timesteps?: number[] } | undefined;
    const selected = new Set(selection?.timesteps ?? []);
    const rows = readCsv(csv);
    const [n, h] = [minMax(rows.map((x) => x.N)), minMax(rows.map((x) => x.H))];
    const hk = Object.keys(rows[0]).find((k) => k.startsWith('hqs_'))!;
    const series = String(r.values.prompt);
    rows.forEach((x, i) => points.push({ series, t: x.t, N: n[i], H: h[i], hqs: x[hk], selected: selected.has(x.t) }));
  }
  return points;
}

export const hqsSection: ReportSection = {
  id: 'hqs',
  order: 20,
  figures(view: ReportView): ReportFigure[] {
    const points = hqsPoints(view.runs);
    if (!points.length) return [];
    const title = 'HQS over timesteps (normalised N̄, H̄; selected t marked)';
    return [{ id: 'hqs', title, spec: hqsCurves(points, 'HQS per prompt') }];
  },
};
