/**
 * Image grids of a page (grids/): per prompt, the first seed's edits of every group side by side
 * (rows = source images, columns = original + each group's edit), then each run's own sheet.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { comparisonGrid } from './compare_grid.js';
import { resultValues, type PageContext } from './groups.js';
import { escapeHtml } from './html.js';

/** Runs whose own sheet is shown. */
const MAX_SHEETS = 30;

const editsOf = (dir: string) => join(dir, 'artifacts', 'edits.png');

function comparisonFigures(ctx: PageContext): string[] {
  const out: string[] = [];
  const prompts = [...new Set(ctx.finished.map(({ r }) => String(resultValues(r).prompt ?? '')))].filter(Boolean);
  for (const [pi, prompt] of prompts.entries()) {
    const sheets = ctx.groups.flatMap((g) => {
      const r = g.runs
        .filter((x) => x.status === 'finished' && resultValues(x).prompt === prompt)
        .sort((a, b) => a.config!.seed - b.config!.seed)[0];
      return r && existsSync(editsOf(r.dir)) ? [{ label: g.label, path: editsOf(r.dir) }] : [];
    });
    if (sheets.length < 2) continue;
    mkdirSync(join(ctx.dir, 'grids'), { recursive: true });
    comparisonGrid(sheets, join(ctx.dir, 'grids', `compare-${pi}.png`));
    const columns = sheets.map((x) => escapeHtml(x.label)).join(', ');
    out.push(
      `<figure><figcaption>${escapeHtml(prompt)} — columns: original, ${columns}</figcaption>` +
        `<img class="grid" src="grids/compare-${pi}.png" alt="comparison"></figure>`,
    );
  }
  return out;
}

/** A run's edit sheet, copied to grids/<run id>.png, as a figure. */
export function sheetFigure(dir: string, src: string, name: string, caption: string): string {
  mkdirSync(join(dir, 'grids'), { recursive: true });
  copyFileSync(src, join(dir, 'grids', `${name}.png`));
  const img = `<img class="grid" src="grids/${escapeHtml(name)}.png" alt="edits">`;
  return `<figure><figcaption>${caption}</figcaption>${img}</figure>`;
}

function runFigures(ctx: PageContext): string[] {
  return ctx.finished.slice(0, MAX_SHEETS).flatMap(({ g, r }) => {
    if (!existsSync(editsOf(r.dir))) return [];
    const what = `${escapeHtml(g.label)} · ${escapeHtml(resultValues(r).prompt ?? '')} · seed ${r.config!.seed}`;
    return [sheetFigure(ctx.dir, editsOf(r.dir), r.id, `${what} (top: originals, bottom: edits)`)];
  });
}

/** The page's "Edits" section (empty without edit sheets). */
export function gridsHtml(ctx: PageContext): string {
  const grids = [...comparisonFigures(ctx), ...runFigures(ctx)];
  return grids.length ? `<h2>Edits</h2>${grids.join('\n')}` : '';
}
