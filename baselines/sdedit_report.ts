/**
 * SDEdit's part of report pages (src/methods/report.ts): the fidelity–editability trade-off, every
 * method a point and SDEdit's strengths a line (low s: faithful, high s: edited).
 */
import type { TopLevelSpec } from 'vega-lite';
import { metricLabel } from '../src/metrics/registry.js';
import { NUMBER_FORMAT as F, SPEC_BASE, spansDecades } from '../src/util/charts.js';
import type { ReportFigure, ReportGroup, ReportSection, ReportView } from '../src/methods/report.js';

export interface TradeoffPoint {
  method: string;
  label: string;
  /** Position along the method's line (SDEdit: strength). */
  order?: number;
  fid: number;
  clip_directional: number;
}

/** FID (lower: more faithful) vs directional CLIP (higher: more edited), SDEdit's strengths as a line. */
export function tradeoff(points: TradeoffPoint[], title: string): TopLevelSpec {
  // FID spans decades between a method that barely edits and one that repaints: log scale then.
  const log = spansDecades(points.map((p) => p.fid));
  const x = { field: 'fid', type: 'quantitative', ...(log ? { scale: { type: 'log' } } : {}) };
  const y = { field: 'clip_directional', type: 'quantitative' };
  const tooltip = [
    { field: 'method' },
    { field: 'label' },
    { field: 'fid', title: metricLabel('fid'), format: F },
    { field: 'clip_directional', title: metricLabel('clip_directional'), format: F },
  ];
  return {
    ...SPEC_BASE,
    title,
    data: { values: points },
    layer: [
      {
        transform: [{ filter: 'datum.method === "sdedit"' }],
        mark: { type: 'line', point: true },
        encoding: {
          x: { ...x, title: `${metricLabel('fid')}, edited vs original${log ? ' (log scale)' : ''}` },
          y: { ...y, title: metricLabel('clip_directional') },
          order: { field: 'order' },
        },
      },
      {
        mark: { type: 'point', filled: true, size: 80 },
        encoding: { x, y, color: { field: 'method', type: 'nominal', title: 'method' }, tooltip },
      },
      { mark: { type: 'text', dy: -10, fontSize: 9 }, encoding: { x, y, text: { field: 'label' } } },
    ],
  } as TopLevelSpec;
}

/** A group's point: SDEdit's labelled and ordered by strength, others by what their label adds to the method. */
function point(view: ReportView, g: ReportGroup): TradeoffPoint[] {
  const f = view.stat(g, 'fid');
  const c = view.stat(g, 'clip_directional');
  // A group that does not sweep strength still has one.
  const strength = g.params?.strength;
  const s = typeof strength === 'number' ? strength : null;
  const label = g.method === 'sdedit' && s !== null ? `s=${s}` : g.label.replace(/^\S+\s?/, '') || g.method;
  return f && c ? [{ method: g.method, label, order: s ?? 0, fid: f.mean, clip_directional: c.mean }] : [];
}

export const tradeoffSection: ReportSection = {
  id: 'tradeoff',
  order: 30,
  figures(view: ReportView): ReportFigure[] {
    if (!view.metrics.includes('fid') || !view.metrics.includes('clip_directional')) return [];
    const points = view.groups.flatMap((g) => point(view, g));
    const spec = tradeoff(points, 'FID vs directional CLIP');
    return [{ id: 'tradeoff', title: 'Fidelity–editability trade-off', spec }];
  },
};
