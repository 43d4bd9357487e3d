/**
 * HTML for report pages: every string from an experiment or a run goes through escapeHtml; specs
 * are embedded as JSON with '<' escaped, so no value can close a tag or open a script. Pages work
 * offline from file:// (vendor scripts are copied next to them): server-rendered SVG shows without
 * JavaScript, and vega-embed replaces it with an interactive view when JavaScript runs. The body's
 * data-errors / data-rendered attributes let a headless browser check the page.
 */
export function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
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
}

const fmt = (v: string | number | null) => (v === null ? '—' : typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : v);

export function tableHtml(t: Table): string {
  const head = t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('');
  const body = t.rows.map((r) => `<tr>${r.map((v) => `<td>${escapeHtml(fmt(v))}</td>`).join('')}</tr>`).join('\n');
  const link = t.csv ? ` <a href="${escapeHtml(t.csv)}">csv</a>` : '';
  return `<h2>${escapeHtml(t.title)}${link}</h2>\n<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

export function figureHtml(f: Figure): string {
  return `<figure id="${escapeHtml(f.id)}"><figcaption>${escapeHtml(f.title)} · <a href="${escapeHtml(f.files.vl)}">vl.json</a> · <a href="${escapeHtml(f.files.png)}">png</a></figcaption>
<div class="chart" data-spec="spec-${escapeHtml(f.id)}">${f.svg}</div>
<script type="application/json" id="spec-${escapeHtml(f.id)}">${jsonForScript(f.spec)}</script></figure>`;
}

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}figure{margin:1em 0}
figcaption{font-size:12px;color:#555}.prov{font-size:12px;color:#555}img.grid{image-rendering:pixelated;max-width:100%}`;

/** Errors (window.onerror, console.error, failed embeds) are counted into body[data-errors]. */
const BOOT = `(function(){var b=document.body,errs=0,done=0;function err(){errs++;b.setAttribute('data-errors',String(errs));}
window.addEventListener('error',err);var ce=console.error;console.error=function(){err();ce.apply(console,arguments);};
var charts=document.querySelectorAll('.chart');b.setAttribute('data-errors','0');b.setAttribute('data-rendered','0');
if(typeof vegaEmbed!=='function'){err();return;}
charts.forEach(function(el){var spec=JSON.parse(document.getElementById(el.getAttribute('data-spec')).textContent);
vegaEmbed(el,spec,{actions:false,renderer:'svg'}).then(function(){done++;b.setAttribute('data-rendered',String(done));}).catch(function(e){err();ce(e);});});})();`;

export function page(opts: { title: string; vendor: string; body: string; provenance: string }): string {
  const v = escapeHtml(opts.vendor);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(opts.title)}</title><style>${STYLE}</style>
<script src="${v}/vega.min.js"></script><script src="${v}/vega-lite.min.js"></script><script src="${v}/vega-embed.min.js"></script></head>
<body><h1>${escapeHtml(opts.title)}</h1>
${opts.body}
<p class="prov">${opts.provenance}</p>
<script>${BOOT}</script></body></html>
`;
}
