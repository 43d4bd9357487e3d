/**
 * The report pages' chart style, shared by every Vega-Lite spec builder: src/reports/charts.ts and
 * the methods' own report sections (src/methods/report.ts), which sit below the reports layer.
 */

/** Tooltips and labels in the tables' number format (3 significant digits: src/reports/html.ts fmt3). */
export const NUMBER_FORMAT = '.3r';

/** Every top-level spec: the schema version and a white background (PNGs are not transparent). */
export const SPEC_TOP = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', background: 'white' } as const;

/** A single-view chart's size (≥ 600 px wide: readable labels); faceted charts size their inner spec instead. */
export const SPEC_BASE = { ...SPEC_TOP, width: 640, height: 280 } as const;

/** Values spanning this ratio or more (all positive) are drawn on a log scale: a small bar stays visible. */
const LOG_SPAN = 50;

/** Whether positive values span decades (a log axis shows them; a linear one flattens the small ones). */
export function spansDecades(values: number[]): boolean {
  const v = values.filter(Number.isFinite);
  return v.length > 1 && v.every((x) => x > 0) && Math.max(...v) / Math.min(...v) >= LOG_SPAN;
}
