/**
 * The page of `sdd regress`: a forest plot of candidate − baseline per metric and prompt, the
 * comparison table, and the first edit sheets of each side.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Comparison } from '../regress/compare.js';
import { RunStore } from '../runs/store.js';
import { writeFileAtomic } from '../util/atomic.js';
import { deltaForest, type DeltaRow } from './charts.js';
import { figure } from './figures.js';
import { sheetFigure } from './grids.js';
import { escapeHtml, figureHtml, page, tableHtml, type Table } from './html.js';
import { copyVendor } from './output.js';

/** What was compared, for the page's provenance line. */
export interface RegressSetup {
  baseline: string;
  candidate: string;
  file: string;
  profile?: string;
}

/** Edit sheets shown per side. */
const SHEETS = 6;

const COLUMNS = [
  'metric', 'prompt', 'n', 'baseline', 'candidate', 'Δ', 'CI', 'p (BH)', 'test', 'MDE', 'min effect', 'verdict',
];

function comparisonTable(rows: Comparison[]): Table {
  const cells = rows.map((r) => [
    r.metric, r.prompt, r.n, r.baseline, r.candidate, r.delta, `${r.lo.toPrecision(3)} – ${r.hi.toPrecision(3)}`,
    r.p_adjusted, r.test, r.mde, r.threshold.min_effect, r.verdict,
  ]);
  return { title: 'Paired comparison', columns: COLUMNS, rows: cells };
}

/** A comparison as a forest-plot row: the prompt labels it. */
function deltaRow(r: Comparison): DeltaRow {
  return { label: r.prompt, metric: r.metric, delta: r.delta, lo: r.lo, hi: r.hi, verdict: r.verdict };
}

/** The first edit sheets of each side's store (baseline, candidate). */
function sideGrids(dir: string, stores: [string, string]): string[] {
  return stores.flatMap((s, k) => {
    const st = new RunStore(s);
    return st.ids().slice(0, SHEETS).flatMap((id) => {
      const src = join(st.dir(id), 'artifacts', 'edits.png');
      if (!existsSync(src)) return [];
      return [sheetFigure(dir, src, `${k}-${id}`, `${k === 0 ? 'baseline' : 'candidate'} ${escapeHtml(id)}`)];
    });
  });
}

/** Writes <out>/<name>/index.html (+ the chart and grids); returns its path. */
export async function regressPage(
  out: string,
  name: string,
  rows: Comparison[],
  setup: RegressSetup,
  stores: [string, string],
): Promise<string> {
  const dir = join(out, name);
  mkdirSync(dir, { recursive: true });
  copyVendor(out);
  const spec = deltaForest(rows.map(deltaRow), 'candidate − baseline (95% CI)');
  const forest = await figure(dir, 'forest', 'Δ per metric and prompt', spec);
  const grids = `<h2>Edits</h2>${sideGrids(dir, stores).join('\n')}`;
  const body = [figureHtml(forest), tableHtml(comparisonTable(rows)), grids].join('\n');
  const profile = setup.profile ? ` (profile ${escapeHtml(setup.profile)})` : '';
  const sides = `baseline ${escapeHtml(setup.baseline)} · candidate ${escapeHtml(setup.candidate)}`;
  const prov = `${sides} · experiment ${escapeHtml(setup.file)}${profile}`;
  writeFileAtomic(join(dir, 'index.html'), page({ title: name, vendor: '../vendor', body, provenance: prov }));
  return join(dir, 'index.html');
}
