/**
 * Comparison grids for report pages: rows = source images, columns = the original and each
 * method's edit, cut from the runs' artifacts/edits.png (two rows: originals over edits, cells of
 * equal size separated by a fixed gap, as src/util/image_io.ts grid() writes them).
 */
import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { writeFileAtomic } from '../util/atomic.js';

const GAP = 2;

interface Sheet {
  png: PNG;
  cell: number;
  cols: number;
}

function readSheet(path: string): Sheet {
  const png = PNG.sync.read(readFileSync(path));
  const cell = (png.height - GAP) / 2;
  return { png, cell, cols: Math.round((png.width - GAP) / cell) };
}

function blit(dst: PNG, src: Sheet, row: number, col: number, dx: number, dy: number): void {
  const inner = src.cell - GAP;
  const sx = GAP + col * src.cell;
  const sy = GAP + row * src.cell;
  for (let y = 0; y < inner; y++) {
    const s = ((sy + y) * src.png.width + sx) * 4;
    src.png.data.copy(dst.data, ((dy + y) * dst.width + dx) * 4, s, s + inner * 4);
  }
}

/** Writes one PNG: `rows` source images × (original + one column per sheet). Returns the row count. */
export function comparisonGrid(sheets: Array<{ label: string; path: string }>, out: string, rows = 6): number {
  const s = sheets.map((x) => readSheet(x.path));
  const cell = s[0].cell;
  if (s.some((x) => x.cell !== cell)) throw new Error('edit sheets of different image sizes');
  const n = Math.min(rows, ...s.map((x) => x.cols));
  const cols = 1 + s.length;
  const png = new PNG({ width: cols * cell + GAP, height: n * cell + GAP });
  png.data.fill(255);
  for (let r = 0; r < n; r++) {
    blit(png, s[0], 0, r, GAP, GAP + r * cell); // the original (row 0 of any sheet)
    s.forEach((sheet, k) => blit(png, sheet, 1, r, GAP + (k + 1) * cell, GAP + r * cell));
  }
  writeFileAtomic(out, PNG.sync.write(png));
  return n;
}
