/**
 * HTML for report pages: every string from an experiment or a run goes through escapeHtml; specs
 * are embedded as JSON with '<' escaped, so no value can close a tag or open a script. Pages work
 * offline from file:// (vendor scripts are copied next to them): server-rendered SVG shows without
 * JavaScript, and vega-embed replaces it with an interactive view when JavaScript runs. The body's
 * data-errors / data-rendered attributes let a headless browser check the page, and
 * data-scrolling-tables / data-page-overflow its layout (tables wider than their box, the page's
 * overflow: both 0 at a 1400 px viewport, report.test.ts).
 */
const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export interface Figure {
  id: string;
  title: string;
  svg: string;
  spec: unknown;
  files: { vl: string; svg: string; png: string };
}

/** A metric value in a table: a mean (or one run's value), with its interval when it has one. */
export interface Num {
  v: number;
  lo?: number | null;
  hi?: number | null;
}

/** Strings as they are, plain numbers are counts (seeds, runs: integers as they are), Num a metric. */
export type Cell = string | number | null | Num;

export interface Table {
  title: string;
  columns: string[];
  rows: Cell[][];
  csv?: string;
  /** Shown under the table: what its intervals are. */
  note?: string;
  /** More lines under the table (e.g. how to read KID). */
  notes?: string[];
  /** Per row: a warning shown as a badge in its first cell (e.g. "no edit"), or null. */
  flags?: Array<string | null>;
}

const SIG3 = new Intl.NumberFormat('en-US', {
  minimumSignificantDigits: 3,
  maximumSignificantDigits: 3,
  useGrouping: false,
});

/**
 * 3 significant digits, no exponent (d3-format's ".3r", which the charts' tooltips use:
 * 1234.5 → 1230, 0.012345 → 0.0123, 2 → 2.00).
 */
function fmt3(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return SIG3.format(v);
}

/**
 * A number whose magnitude is not known in advance (a difference, a p-value): `digits`
 * significant digits without trailing zeros, and an exponent below 0.001 or from 10⁶
 * (−0.0000105 → -1.05e-5, 0.00055 → 5.5e-4 at 2 digits, 0.0120 → 0.012).
 */
export function fmtSig(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e6) return v.toExponential(digits - 1).replace(/e\+?/, 'e');
  return Number(v.toPrecision(digits)).toString();
}

/** An interval as "[a, b]". */
export const interval = (lo: number, hi: number, f: (v: number) => string = fmtSig): string => `[${f(lo)}, ${f(hi)}]`;

const isNum = (c: Cell): c is Num => typeof c === 'object' && c !== null;

/**
 * A column's one number format: fixed decimals, enough for 3 significant digits of its largest
 * value and 2 of its smallest non-zero one (at most 3): FID 2.1 … 1140.0, hit rate 0.000 … 1.000.
 */
export function columnDecimals(values: number[]): number {
  const a = values.filter(Number.isFinite).map(Math.abs);
  const nz = a.filter((x) => x > 0);
  if (!nz.length) return 2;
  const byMax = 2 - Math.floor(Math.log10(Math.max(...nz)));
  const byMin = 1 - Math.floor(Math.log10(Math.min(...nz)));
  return Math.max(0, Math.min(3, Math.max(byMax, byMin)));
}

/** v with d decimals; a value that rounds to zero is written without its sign. */
function fixed(v: number, d: number): string {
  if (!Number.isFinite(v)) return String(v);
  const s = v.toFixed(d);
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

/** The decimals of each column (metric columns only: those with a Num). */
function decimalsOf(t: Table): Array<number | null> {
  return t.columns.map((_, j) => {
    const cells = t.rows.map((r) => r[j]).filter(isNum);
    return cells.length ? columnDecimals(cells.map((c) => c.v)) : null;
  });
}

/** A cell as text: a metric with its column's decimals and its interval as "[lo, hi]". */
export function cellText(v: Cell, d: number | null): string {
  if (v === null) return '—';
  if (isNum(v)) {
    const f = (x: number) => fixed(x, d ?? 2);
    return v.lo != null && v.hi != null ? `${f(v.v)} [${f(v.lo)}, ${f(v.hi)}]` : f(v.v);
  }
  return typeof v === 'number' ? (Number.isInteger(v) ? String(v) : fmt3(v)) : v;
}

function cellHtml(v: Cell, d: number | null): string {
  if (isNum(v) && v.lo != null && v.hi != null) {
    // The interval under its mean: a column is as wide as its longest interval, not mean + interval.
    const f = (x: number) => fixed(x, d ?? 2);
    return `<span class="m">${escapeHtml(f(v.v))}</span><span class="ci">[${escapeHtml(f(v.lo))}, ${escapeHtml(f(v.hi))}]</span>`;
  }
  // Long text (a prompt, a method label) may break after ':' and '>' and at spaces; numbers never.
  const text = escapeHtml(cellText(v, d));
  return typeof v === 'string' ? `<span class="t">${text.replace(/(:|&gt;)/g, '$1<wbr>')}</span>` : text;
}

export function tableHtml(t: Table): string {
  const d = decimalsOf(t);
  const head = t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('');
  const row = (r: Cell[], i: number) => {
    const flag = t.flags?.[i];
    const cells = r.map((v, j) => {
      const badge =
        j === 0 && flag ? ` <span class="flag" title="${escapeHtml(flag)}">⚠ ${escapeHtml(flag)}</span>` : '';
      return `<td>${cellHtml(v, d[j])}${badge}</td>`;
    });
    return `<tr${flag ? ' class="flagged"' : ''}>${cells.join('')}</tr>`;
  };
  const body = t.rows.map(row).join('\n');
  const link = t.csv ? ` <a href="${escapeHtml(t.csv)}">csv</a>` : '';
  const notes = [t.note, ...(t.notes ?? [])]
    .filter(Boolean)
    .map((n) => `\n<p class="note">${escapeHtml(n)}</p>`)
    .join('');
  // The wrapper scrolls a table sideways inside its box if it must (its first column stays put).
  const table = `<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
  return `<h2>${escapeHtml(t.title)}${link}</h2>\n<div class="scroll">${table}</div>${notes}`;
}

export function figureHtml(f: Figure): string {
  const links = `<a href="${escapeHtml(f.files.vl)}">vl.json</a> · <a href="${escapeHtml(f.files.png)}">png</a>`;
  return `<figure id="${escapeHtml(f.id)}"><figcaption>${escapeHtml(f.title)} · ${links}</figcaption>
<div class="chart" data-spec="spec-${escapeHtml(f.id)}">${f.svg}</div>
<script type="application/json" id="spec-${escapeHtml(f.id)}">${jsonForScript(f.spec)}</script></figure>`;
}

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1560px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}.caption{color:#333;max-width:1100px;margin:.3em 0 1.5em}
.scroll,.chart{overflow-x:auto;max-width:100%}.scroll{margin:.5em 0 1.5em}.note{font-size:12px;color:#555;margin:-1em 0 1.5em;max-width:1100px}
.note+.note{margin-top:-1.2em}table{border-collapse:separate;border-spacing:0;margin:0;font-size:13px}
td,th{border:1px solid #ccc;border-width:0 1px 1px 0;padding:3px 5px;text-align:right;vertical-align:top}
tr>:first-child{border-left-width:1px}thead th{border-top-width:1px}td{white-space:nowrap}td .t{white-space:normal;display:inline-block;min-width:6em;max-width:14em}
th{background:#f4f4f4;font-weight:600;min-width:3.5em}td:first-child,th:first-child{text-align:left;position:sticky;left:0;z-index:1}
td:first-child{background:#fff}th:first-child{background:#f4f4f4}
.ci{display:block;font-size:11px;color:#666}tr.flagged td{background:#fff3e0}.flag{color:#b25000;font-size:11px;font-weight:600}
figure{margin:1em 0 2em}figcaption{font-size:13px;color:#444;margin-bottom:.3em}.prov{font-size:12px;color:#555}
img.grid{image-rendering:pixelated;max-width:100%}`;

/** Errors (window.onerror, console.error, failed embeds) are counted into body[data-errors]. */
const BOOT = `(function(){var b=document.body,errs=0,done=0;function err(){errs++;b.setAttribute('data-errors',String(errs));}
window.addEventListener('error',err);var ce=console.error;console.error=function(){err();ce.apply(console,arguments);};
var charts=document.querySelectorAll('.chart');b.setAttribute('data-errors','0');b.setAttribute('data-rendered','0');
function layout(){var w=0;document.querySelectorAll('.scroll').forEach(function(el){if(el.scrollWidth>el.clientWidth&&getComputedStyle(el).overflowX==='auto')w++;});
b.setAttribute('data-scrolling-tables',String(w));b.setAttribute('data-page-overflow',String(Math.max(0,document.documentElement.scrollWidth-document.documentElement.clientWidth)));}
layout();
if(typeof vegaEmbed!=='function'){err();return;}
charts.forEach(function(el){var spec=JSON.parse(document.getElementById(el.getAttribute('data-spec')).textContent);
vegaEmbed(el,spec,{actions:false,renderer:'svg'}).then(function(){done++;b.setAttribute('data-rendered',String(done));layout();}).catch(function(e){err();ce(e);});});})();`;

/** A page; `caption` (escaped HTML) stands under the title: what the page shows, under which profile. */
export function page(opts: {
  title: string;
  vendor: string;
  body: string;
  provenance: string;
  caption?: string;
}): string {
  const v = escapeHtml(opts.vendor);
  const scripts = ['vega', 'vega-lite', 'vega-embed'].map((js) => `<script src="${v}/${js}.min.js"></script>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(opts.title)}</title><style>${STYLE}</style>
${scripts}</head>
<body><h1>${escapeHtml(opts.title)}</h1>
${opts.caption ? `<p class="caption">${opts.caption}</p>\n` : ''}${opts.body}
<p class="prov">${opts.provenance}</p>
<script>${BOOT}</script></body></html>
`;
}
