/**
 * HTML for report pages: every string from an experiment or a run goes through escapeHtml; specs
 * are embedded as JSON with '<' escaped, so no value can close a tag or open a script. Pages work
 * offline from file:// (vendor scripts are copied next to them): server-rendered SVG shows without
 * JavaScript, and vega-embed replaces it with an interactive view when JavaScript runs. The body's
 * data-errors / data-rendered attributes let a headless browser check the page, and
 * data-scrolling-tables / data-page-overflow its layout (tables scroll in their box, the page not).
 */
const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

export interface Figure {
  id: string;
  title: string;
  svg: string;
  spec: unknown;
  files: { vl: string; svg: string; png: string };
}

export interface Table {
  title: string;
  columns: string[];
  rows: Array<Array<string | number | null>>;
  csv?: string;
  /** Shown under the table: what its intervals are. */
  note?: string;
}

const SIG3 = new Intl.NumberFormat('en-US', {
  minimumSignificantDigits: 3,
  maximumSignificantDigits: 3,
  useGrouping: false,
});

/**
 * The pages' one number format: 3 significant digits, no exponent (d3-format's ".3r", which the
 * charts' tooltips use: 1234.5 → 1230, 0.012345 → 0.0123, 2 → 2.00).
 */
export function fmt3(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return SIG3.format(v);
}

// Integers in tables are counts (seeds, runs, |S|): shown as they are.
function fmt(v: string | number | null): string {
  if (v === null) return '—';
  return typeof v === 'number' ? (Number.isInteger(v) ? String(v) : fmt3(v)) : v;
}

export function tableHtml(t: Table): string {
  const head = t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('');
  const body = t.rows.map((r) => `<tr>${r.map((v) => `<td>${escapeHtml(fmt(v))}</td>`).join('')}</tr>`).join('\n');
  const link = t.csv ? ` <a href="${escapeHtml(t.csv)}">csv</a>` : '';
  const note = t.note ? `\n<p class="note">${escapeHtml(t.note)}</p>` : '';
  // The wrapper scrolls a wide table sideways inside its box instead of widening the page.
  const table = `<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
  return `<h2>${escapeHtml(t.title)}${link}</h2>\n<div class="scroll">${table}</div>${note}`;
}

export function figureHtml(f: Figure): string {
  const links = `<a href="${escapeHtml(f.files.vl)}">vl.json</a> · <a href="${escapeHtml(f.files.png)}">png</a>`;
  return `<figure id="${escapeHtml(f.id)}"><figcaption>${escapeHtml(f.title)} · ${links}</figcaption>
<div class="chart" data-spec="spec-${escapeHtml(f.id)}">${f.svg}</div>
<script type="application/json" id="spec-${escapeHtml(f.id)}">${jsonForScript(f.spec)}</script></figure>`;
}

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
.scroll,.chart{overflow-x:auto;max-width:100%}.scroll{margin:.5em 0 1.5em}.note{font-size:12px;color:#555;margin:-1em 0 1.5em}td{white-space:nowrap}
table{border-collapse:collapse;margin:0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}figure{margin:1em 0}
figcaption{font-size:12px;color:#555}.prov{font-size:12px;color:#555}img.grid{image-rendering:pixelated;max-width:100%}`;

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

export function page(opts: { title: string; vendor: string; body: string; provenance: string }): string {
  const v = escapeHtml(opts.vendor);
  const scripts = ['vega', 'vega-lite', 'vega-embed'].map((js) => `<script src="${v}/${js}.min.js"></script>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(opts.title)}</title><style>${STYLE}</style>
${scripts}</head>
<body><h1>${escapeHtml(opts.title)}</h1>
${opts.body}
<p class="prov">${opts.provenance}</p>
<script>${BOOT}</script></body></html>
`;
}
