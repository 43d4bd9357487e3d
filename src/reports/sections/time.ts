/**
 * Total time against images per prompt (Eq. 13–15) for every method with τ_train and τ_infer,
 * the break-even m of each pair marked; only with two methods or more (nothing to compare before).
 */
import { breakEven } from '../../metrics/total_time.js';
import type { ReportFigure, ReportSection, ReportView } from '../../methods/report.js';
import { timeVsM, type MethodTime } from '../charts.js';

function breakEvens(times: MethodTime[]): Array<{ pair: string; m: number }> {
  return times.flatMap((a, i) =>
    times.slice(i + 1).flatMap((b) => {
      const ta = { train_s: a.tau_train, infer_s: a.tau_infer };
      const tb = { train_s: b.tau_train, infer_s: b.tau_infer };
      // Whichever trains longer catches up per image (if it is faster per image at all).
      const m = breakEven(ta, tb) ?? breakEven(tb, ta);
      return m === null || m === 0 ? [] : [{ pair: `${a.method} vs ${b.method}`, m }];
    }),
  );
}

export const timeSection: ReportSection = {
  id: 'time',
  order: 40,
  figures(view: ReportView): ReportFigure[] {
    const times = view.groups.flatMap((g) => {
      const tr = view.stat(g, 'tau_train_s');
      const inf = view.stat(g, 'tau_infer_s');
      return tr && inf ? [{ method: g.label, tau_train: tr.mean, tau_infer: inf.mean }] : [];
    });
    if (times.length < 2) return [];
    const n = Math.max(1, new Set(view.runs.map((r) => r.values.prompt)).size);
    const be = breakEvens(times);
    // Wide enough to show every break-even point (a quarter beyond the last), at least m = 200.
    const maxM = Math.min(5000, Math.max(200, Math.ceil((1.25 * Math.max(0, ...be.map((b) => b.m))) / 50) * 50));
    const spec = timeVsM(times, n, maxM, be, 'total time');
    return [{ id: 'time', title: 'Total time vs images per prompt (Eq. 13–15)', spec }];
  },
};
