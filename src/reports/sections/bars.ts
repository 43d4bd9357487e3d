/** Bars of each metric the metric table marks `bars`, per method, with the method-level interval. */
import { METRICS, metricLabel } from '../../metrics/registry.js';
import type { ReportFigure, ReportSection, ReportView } from '../../methods/report.js';
import { metricBars, type MetricRow } from '../charts.js';
import { LEVEL } from '../intervals.js';

function rows(view: ReportView, metric: string): MetricRow[] {
  return view.groups.flatMap((g) => {
    const s = view.stat(g, metric);
    return s ? [{ group: g.label, metric, mean: s.mean, lo: s.lo ?? s.mean, hi: s.hi ?? s.mean, n: s.prompts }] : [];
  });
}

export const barsSection: ReportSection = {
  id: 'bars',
  order: 10,
  figures(view: ReportView): ReportFigure[] {
    const keys = METRICS.filter((m) => m.bars && view.metrics.includes(m.key)).map((m) => m.key);
    return keys.map((m) => ({
      id: `bars-${m}`,
      title: `${metricLabel(m)} per method: mean over prompts, ${LEVEL * 100}% bootstrap CI`,
      spec: metricBars(rows(view, m), m, metricLabel(m)),
    }));
  },
};
