/**
 * The figures of a page: every report section (sections/index.ts, the methods' own) sees the page
 * through a ReportView (src/methods/report.ts) and returns Vega-Lite specs; each is checked against
 * the schema and written as charts/<id>.vl.json, .svg (inlined in the page) and .png.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { ReportGroup, ReportRun, ReportView } from '../methods/report.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { resultValues, type Group, type PageContext } from './groups.js';
import type { Figure } from './html.js';
import { renderSvg, svgToPng, validateSpec } from './render.js';
import { pageSections } from './sections/index.js';

export async function figure(dir: string, id: string, title: string, spec: TopLevelSpec): Promise<Figure> {
  const problems = validateSpec(spec);
  if (problems.length) throw new Error(`chart ${id}: invalid Vega-Lite spec: ${problems.slice(0, 3).join('; ')}`);
  const svg = await renderSvg(spec);
  mkdirSync(join(dir, 'charts'), { recursive: true });
  writeJsonAtomic(join(dir, 'charts', `${id}.vl.json`), spec);
  writeFileAtomic(join(dir, 'charts', `${id}.svg`), svg);
  writeFileAtomic(join(dir, 'charts', `${id}.png`), svgToPng(svg));
  const files = { vl: `charts/${id}.vl.json`, svg: `charts/${id}.svg`, png: `charts/${id}.png` };
  return { id, title, svg, spec, files };
}

function reportRun(r: Group['runs'][number]): ReportRun {
  const values = resultValues(r);
  return { id: r.id, dir: r.dir, prompt: String(values.prompt ?? ''), seed: r.config!.seed, values };
}

/** The page as report sections see it: plain rows, and the method-level statistics of its table. */
function reportView(ctx: PageContext): ReportView {
  const groups = new Map<ReportGroup, Group>();
  for (const g of ctx.groups) {
    const params = (g.runs.find((r) => r.config)?.config?.method.params as Record<string, unknown> | undefined) ?? null;
    const finished = g.runs.filter((r) => r.status === 'finished').map(reportRun);
    groups.set({ label: g.label, method: g.method, params, finished }, g);
  }
  const views = [...groups.keys()];
  return {
    groups: views,
    runs: views.flatMap((g) => g.finished),
    metrics: ctx.metrics,
    stat: (g, metric) => {
      const group = groups.get(g);
      return group ? ctx.sums.method(group, metric) : null;
    },
  };
}

/** Every section's figures, rendered and written, in the sections' order. */
export async function sectionFigures(ctx: PageContext): Promise<Figure[]> {
  const view = reportView(ctx);
  const figures: Figure[] = [];
  for (const section of pageSections(ctx.groups.map((g) => g.method))) {
    for (const f of section.figures(view)) {
      if (figures.some((x) => x.id === f.id)) throw new Error(`report section ${section.id}: a second chart '${f.id}'`);
      figures.push(await figure(ctx.dir, f.id, f.title, f.spec));
    }
  }
  return figures;
}
