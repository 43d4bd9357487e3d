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
import { escapeHtml, figureHtml, fmtSig, interval, page, tableHtml, type Table } from './html.js';
import { copyVendor } from './output.js';

/** What was compared, for the page's provenance line. */
export interface RegressSetup {
  baseline: string;
  candidate: string;
  file: string;
  profile?: string;
  /** The experiment's title (its `title:`), else the page's name. */
  title?: string;
}

/** Edit sheets shown per side. */
const SHEETS = 6;

const COLUMNS = [
  'metric',
  'prompt',
  'n',
  'baseline',
  'candidate',
  'Δ [95% CI]',
  'p (BH)',
  'test',
  'MDE',
  'min effect',
  'verdict',
];

/** Numbers of different metrics share a column here: each in 3 significant digits (an exponent when tiny). */
function comparisonTable(rows: Comparison[]): Table {
  const cells = rows.map((r) => [
    r.metric,
    r.prompt,
    r.n,
    fmtSig(r.baseline),
    fmtSig(r.candidate),
    `${fmtSig(r.delta)}\u00a0${interval(r.lo, r.hi).replace(' ', '\u00a0')}`,
    fmtSig(r.p_adjusted, 2),
    r.test,
    r.mde === null ? null : fmtSig(r.mde, 2),
    fmtSig(r.threshold.min_effect),
    r.verdict,
  ]);
  const note =
    'Verdict: "within noise" unless the Benjamini–Hochberg p is below alpha and the CI excludes 0; a significant ' +
    'difference no larger than the metric\'s min effect is "significant, below threshold" (real, too small to ' +
    'count); a larger one is regressed or improved. Only "regressed" fails the command (exit 1).';
  return { title: 'Paired comparison', columns: COLUMNS, rows: cells, note };
}

/** A comparison as a forest-plot row: the prompt labels it. */
function deltaRow(r: Comparison): DeltaRow {
  return { label: r.prompt, metric: r.metric, delta: r.delta, lo: r.lo, hi: r.hi, verdict: r.verdict };
}

/** Per side, its finished runs by prompt, the lowest seed first. */
function runsByPrompt(store: string): Map<string, Array<{ id: string; seed: number; dir: string }>> {
  const st = new RunStore(store);
  const by = new Map<string, Array<{ id: string; seed: number; dir: string }>>();
  for (const s of st.list()) {
    const prompt = (s.result?.metrics as { prompt?: unknown } | undefined)?.prompt;
    if (s.status !== 'finished' || typeof prompt !== 'string' || !s.config) continue;
    by.set(
      prompt,
      [...(by.get(prompt) ?? []), { id: s.id, seed: s.config.seed, dir: s.dir }].sort((a, b) => a.seed - b.seed),
    );
  }
  return by;
}

/** For each compared prompt, the first seed's edit sheet of each side, captioned with the prompt. */
function sideGrids(dir: string, stores: [string, string], prompts: string[]): string[] {
  const sides = stores.map(runsByPrompt);
  return prompts.slice(0, SHEETS).flatMap((prompt) =>
    sides.flatMap((by, k) => {
      const r = by.get(prompt)?.[0];
      const src = r && join(r.dir, 'artifacts', 'edits.png');
      if (!r || !src || !existsSync(src)) return [];
      const side = k === 0 ? 'baseline' : 'candidate';
      const caption = `${side} · ${escapeHtml(prompt)} · seed ${r.seed} · run ${escapeHtml(r.id)} (top: originals, bottom: edits)`;
      return [sheetFigure(dir, src, `${k}-${r.id}`, caption)];
    }),
  );
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
  const forest = await figure(dir, 'forest', 'Δ per metric and prompt, coloured by verdict', spec);
  const prompts = [...new Set(rows.map((r) => r.prompt))];
  const grids = `<h2>Edits</h2>${sideGrids(dir, stores, prompts).join('\n')}`;
  const body = [figureHtml(forest), tableHtml(comparisonTable(rows)), grids].join('\n');
  const profile = setup.profile ? `${setup.profile} profile` : 'full settings (no profile)';
  const sides = `baseline ${escapeHtml(setup.baseline)} · candidate ${escapeHtml(setup.candidate)}`;
  const prov = `${sides} · experiment ${escapeHtml(setup.file)} · ${escapeHtml(profile)}`;
  const counts = `${prompts.length} prompt${prompts.length === 1 ? '' : 's'}, ${rows[0]?.n ?? 0} images per run`;
  const title = `sdd regress · ${setup.title ?? name} — ${profile}: ${counts}`;
  const verdicts = [...new Set(rows.map((r) => r.verdict))].map(
    (v) => `${rows.filter((r) => r.verdict === v).length} ${v}`,
  );
  const caption =
    `<b>${escapeHtml(profile)}</b>. ${sides}; ${escapeHtml(counts)}, seeds ${rows[0]?.seeds.join(' vs ') ?? '—'}. ` +
    `Cells (metric × prompt): ${escapeHtml(verdicts.join(', '))}.`;
  writeFileAtomic(join(dir, 'index.html'), page({ title, caption, vendor: '../vendor', body, provenance: prov }));
  return join(dir, 'index.html');
}
