/**
 * Reports: every chart kind from synthetic data validates against the Vega-Lite schema and
 * renders to SVG and PNG; a page built from fixture runs (one prompt carries a <script> tag)
 * loads from file:// in headless Debian chromium with every chart rendered, no console errors,
 * and the tag escaped; the Table 1 block comes first, no axis is titled with a raw key (fid_lo),
 * every interval lies in its metric's range, and wide tables scroll inside their box.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dumpDom, screenshot } from '../util/chromium.js';
import { join } from 'node:path';
import { tmp, writeFiles } from '../../test/helpers.js';
import { planAll } from '../cli/commands/experiments.js';
import { registerBuiltinMethods } from '../methods/index.js';
import { RunStore } from '../runs/store.js';
import { toPng } from '../util/image_io.js';
import { f32, writeSafetensors } from '../util/safetensors.js';
import type { Summary } from './intervals.js';
import { METRICS } from '../metrics/registry.js';
import { hqsCurves, metricBars, timeVsM, trainingCurves } from './charts.js';
import { tradeoff } from '../../baselines/sdedit_report.js';
import { renderSvg, svgToPng, validateSpec } from './render.js';
import { buildReport, meanCi } from './build.js';
import { escapeHtml } from './html.js';

registerBuiltinMethods();

/** Loads a page headless and returns its DOM after scripts ran (optionally a screenshot too). */
function loadInChromium(url: string, shot?: string): string {
  if (shot) screenshot(url, shot);
  return dumpDom(url);
}

test('every chart kind validates against the shipped Vega-Lite schema and renders to SVG and PNG', async () => {
  const specs = [
    metricBars([{ group: 'sdd', metric: 'fid', mean: 3, lo: 2, hi: 4, n: 3 }, { group: 'sdedit', metric: 'fid', mean: 5, lo: 4, hi: 7, n: 3 }], 'fid', 'FID'),
    hqsCurves([50, 100, 150].map((t) => ({ series: 'a face with red hair', t, N: t / 150, H: 1 - t / 150, hqs: (2 * t) / 150 - 1, selected: t > 60 })), 'HQS'),
    tradeoff([{ method: 'sdedit', label: 's=0.3', fid: 3, clip_directional: 0.1 }, { method: 'sdd', label: 'sdd', fid: 2, clip_directional: 0.25 }], 'tradeoff'),
    timeVsM([{ method: 'sdd', tau_train: 100, tau_infer: 0.01 }, { method: 'sdedit', tau_train: 0, tau_infer: 2 }], 10, 100, [{ pair: 'sdd vs sdedit', m: 50.25 }], 'time'),
    trainingCurves([0, 1, 2].map((s) => ({ run: 'r1', step: s, metric: 'loss', value: 3 - s })), 'train'),
  ];
  for (const spec of specs) {
    assert.deepEqual(validateSpec(spec), []);
    const svg = await renderSvg(spec);
    assert.match(svg, /^<svg[\s\S]*<\/svg>$/);
    assert.deepEqual([...svgToPng(svg).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  }
  assert.ok(validateSpec({ mark: 'nope' } as never).length > 0, 'an invalid spec is reported');
});

test('mean and 95% Student-t interval (SciPy: t.ppf(0.975, 2) = 4.3027)', () => {
  const r = meanCi([1, 2, 3]);
  assert.equal(r.mean, 2);
  assert.ok(Math.abs(r.hi - (2 + 4.303 / Math.sqrt(3))) < 1e-9);
  assert.deepEqual(meanCi([5]), { mean: 5, lo: 5, hi: 5, n: 1 });
  assert.equal(escapeHtml(`<script>"&'`), '&lt;script&gt;&quot;&amp;&#39;');
});

test('a report page from fixture runs loads in headless chromium: charts render, no errors, strings escaped', async () => {
  const root = tmp();
  const evil = 'hair:<script>window.__pwned=1</script>';
  writeFiles(root, {
    'exp.yaml': `name: fixture
world: toyfaces
method:
  name: sdd
  params: { prompt: x, selection: { strategy: threshold, xi: 0.2 } }
seeds: [0, 1]
sweep:
  method.params.prompt: ["${evil}", "glasses:none->glasses"]
  method.params.lambda_l2: [1, 10]
`,
  });
  const store = new RunStore(join(root, 'runs'));
  const file = join(root, 'exp.yaml');
  const runs = planAll([file], {});
  assert.equal(runs.length, 8);
  const img = new Float32Array(8 * 8 * 3).fill(0.5);
  const n = 12;
  runs.forEach((r, i) => {
    const dir = store.prepare(r.id, r.config);
    const prompt = r.config.method.params.prompt as string;
    // Hit rates 0.083 and 0.917 on the two seeds: a t over two seeds (t = 12.7) would leave [0, 1].
    const hit = Array.from({ length: n }, (_, k) => (r.config.seed === 0 ? k < 1 : k < 11) ? 1 : 0);
    const clip = Array.from({ length: n }, (_, k) => 0.1 + i / 100 + 0.05 * Math.sin(k + i));
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    writeFileSync(join(dir, 'result.json'), JSON.stringify({ id: r.id, metrics: { prompt, n, fid: 5 + i, clip_directional: mean(clip), hit_rate: mean(hit), identity: 0.9, tau_train_s: 100 + i, tau_infer_s: 0.01, selection: { timesteps: [300, 400] } } }));
    writeFileSync(join(dir, 'metrics.jsonl'), [0, 1, 2].map((s) => JSON.stringify({ step: s, time: 1.7e9 + s * 0.5, loss: 3 - s + i / 10, id_loss: 1 / (s + 1), t: 300 })).join('\n') + '\n');
    mkdirSync(join(dir, 'artifacts'), { recursive: true });
    writeFileSync(join(dir, 'artifacts', 'hqs.csv'), 't,N,H,hqs_paper\n' + [100, 200, 300, 400].map((ts) => `${ts},${ts / 400},${1 - ts / 800},${ts / 400 - 0.5}`).join('\n') + '\n');
    writeFileSync(join(dir, 'artifacts', 'edits.png'), toPng(img, 8, 8));
    writeFileSync(join(dir, 'artifacts', 'items.json'), JSON.stringify({ prompt, hit, clip_directional: clip }));
    const feat = (s: number) => Float32Array.from({ length: n * 16 }, (_, k) => Math.sin(0.37 * k + s) + 0.3 * Math.cos(0.05 * k * (k % 5) + s));
    writeSafetensors(join(dir, 'artifacts', 'features.safetensors'), new Map([['original', f32([n, 16], feat(i))], ['edited', f32([n, 16], feat(i + 0.5))]]));
  });
  const out = join(root, 'reports');
  const { pages } = await buildReport([file], {}, store, out);
  const html = readFileSync(pages[0].path, 'utf-8');
  assert.ok(!html.includes('<script>window.__pwned'), 'the prompt is escaped');
  assert.ok(html.includes('&lt;script&gt;window.__pwned=1&lt;/script&gt;'));
  const charts = (html.match(/class="chart"/g) ?? []).length;
  assert.ok(charts >= 5, `${charts} charts`);
  const csv = readFileSync(join(out, 'fixture', 'results.csv'), 'utf-8').trim().split('\n');
  assert.equal(csv.length, 3, 'header + one row per group (lambda_l2 = 1, 10)');
  assert.match(csv[0], /^method,(.*,)?fid,fid_ci95_lo,fid_ci95_hi,.*,interval,runs$/, 'the interval bounds and their unit are columns');
  // Every interval, per method and per prompt, lies in its metric's range (and says what it is).
  const res = JSON.parse(readFileSync(join(out, 'fixture', 'results.json'), 'utf-8')) as { methods: Array<Record<string, unknown>>; prompts: Array<Record<string, unknown>> };
  let intervals = 0;
  for (const rec of [...res.methods, ...res.prompts])
    for (const { key: m, ...info } of METRICS) {
      const s = rec[m] as Summary | null | undefined;
      if (!s || s.lo === null || s.hi === null) continue;
      intervals++;
      assert.ok(info.range[0] <= s.lo && s.lo <= s.hi && s.hi <= info.range[1], `${m} ${s.lo} … ${s.hi} outside ${info.range} (${s.interval})`);
      assert.ok(s.interval.length > 10);
    }
  assert.ok(intervals >= 20, `${intervals} intervals checked`);
  const clipped = res.prompts.map((p) => p.hit_rate as Summary);
  assert.ok(clipped.every((s) => s.lo === 0 && s.hi === 1 && s.interval === '95% t over 2 seeds, clipped to [0, 1]'), JSON.stringify(clipped[0]));
  assert.match((res.methods[0].fid as Summary).interval, /^mean over 2 prompts; 95% bootstrap over \(prompt, item\) pairs and seeds within each prompt, 200 resamples, seed 0$/);
  const dom = loadInChromium(`file://${pages[0].path}`, join(root, 'shot.png'));
  const body = /<body([^>]*)>/.exec(dom)![1];
  assert.match(body, /data-errors="0"/);
  // Layout: the first table is Table 1; a wide table scrolls in its wrapper, the page does not.
  assert.equal(/<h2>([^<]*)/.exec(dom)![1].trim(), 'Table 1');
  assert.match(body, /data-page-overflow="0"/);
  assert.ok(Number(/data-scrolling-tables="(\d+)"/.exec(body)![1]) >= 1, body);
  // Axis titles are human names: no raw key (fid_lo, hit_rate_hi) in any rendered chart text.
  const texts = [...dom.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  assert.ok(texts.includes('FID ↓') && texts.includes('hit rate ↑'), texts.slice(0, 40).join(' | '));
  assert.deepEqual(texts.filter((t) => /_lo|_hi/.test(t)), []);
  assert.ok(texts.includes('seconds per step') && texts.includes('id loss'), 'training panels: step durations, worded scalar names');
  assert.deepEqual([...dom.matchAll(/aria-label="([^"]*)"/g)].map((m) => m[1]).filter((t) => /\w_(lo|hi)\b/.test(t)), [], 'nor in the charts\' accessible labels');
  assert.match(body, new RegExp(`data-rendered="${charts}"`));
  assert.ok(!/<script>window\.__pwned/.test(dom) && dom.includes('&lt;script&gt;window.__pwned'), 'the browser shows the tag as text, runs nothing');
  assert.ok(readFileSync(join(root, 'shot.png')).length > 10_000, 'screenshot written');
  const index = loadInChromium(`file://${join(out, 'index.html')}`);
  assert.match(index, /data-errors="0"/);
});
