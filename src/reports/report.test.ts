/**
 * Reports: every chart kind from synthetic data validates against the Vega-Lite schema and
 * renders to SVG and PNG; a page built from fixture runs (one prompt carries a <script> tag)
 * loads from file:// in headless Debian chromium at a 1400 px viewport with every chart rendered
 * (each with x and y axis titles), no console errors, and the tag escaped; the title and caption
 * name the profile, the paper-layout block comes first, no axis is titled with a raw key (fid_lo),
 * every interval lies in its metric's range, and no table is wider than its box. The screenshot is
 * kept under $SDD_TEST_ARTIFACTS (else the test's temp folder), its path printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dumpDom, screenshot } from '../util/chromium.js';
import { join } from 'node:path';
import { tmp, writeFiles } from '../../test/helpers.js';
import { planAll } from '../cli/commands/experiments.js';
import type { PlannedRun } from '../experiments/expand.js';
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
  const bars = [
    { group: 'sdd', metric: 'fid', mean: 3, lo: 2, hi: 4, n: 3 },
    { group: 'sdedit', metric: 'fid', mean: 5, lo: 4, hi: 7, n: 3 },
  ];
  const curve = (t: number) => ({ N: t / 150, H: 1 - t / 150, hqs: (2 * t) / 150 - 1 });
  const hqs = [50, 100, 150].map((t) => ({ series: 'a face with red hair', t, ...curve(t), selected: t > 60 }));
  const points = [
    { method: 'sdedit', label: 's=0.3', fid: 3, clip_directional: 0.1 },
    { method: 'sdd', label: 'sdd', fid: 2, clip_directional: 0.25 },
  ];
  const times = [
    { method: 'sdd', tau_train: 100, tau_infer: 0.01 },
    { method: 'sdedit', tau_train: 0, tau_infer: 2 },
  ];
  const specs = [
    metricBars(bars, 'fid', 'FID'),
    hqsCurves(hqs, 'HQS'),
    tradeoff(points, 'tradeoff'),
    timeVsM(times, 10, 100, [{ pair: 'sdd vs sdedit', m: 50.25 }], 'time'),
    trainingCurves(
      [0, 1, 2].map((s) => ({ run: 'r1', step: s, metric: 'loss', value: 3 - s })),
      'train',
    ),
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

const EVIL = 'hair:<script>window.__pwned=1</script>';
const N_ITEMS = 12;

const fixtureMean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

/** Smooth pseudo-features of N_ITEMS items, 16-d, shifted by s. */
const fixtureFeatures = (s: number) =>
  Float32Array.from(
    { length: N_ITEMS * 16 },
    (_, k) => Math.sin(0.37 * k + s) + 0.3 * Math.cos(0.05 * k * (k % 5) + s),
  );

/** A finished SDD-like run's files: result, per-step scalars, HQS scan, edits, items and FID features. */
function writeFixtureRun(dir: string, r: PlannedRun, i: number): void {
  const n = N_ITEMS;
  const prompt = r.config.method.params.prompt as string;
  // Hit rates 0.083 and 0.917 on the two seeds: a t over two seeds (t = 12.7) would leave [0, 1].
  const hit = Array.from({ length: n }, (_, k) => ((r.config.seed === 0 ? k < 1 : k < 11) ? 1 : 0));
  const clip = Array.from({ length: n }, (_, k) => 0.1 + i / 100 + 0.05 * Math.sin(k + i));
  const [clip_directional, hit_rate] = [fixtureMean(clip), fixtureMean(hit)];
  const times = { tau_train_s: 100 + i, tau_infer_s: 0.01 };
  const selection = { timesteps: [300, 400] };
  const metrics = { prompt, n, fid: 5 + i, clip_directional, hit_rate, identity: 0.9, ...times, selection };
  writeFileSync(join(dir, 'result.json'), JSON.stringify({ id: r.id, metrics }));
  const step = (s: number) => ({ step: s, time: 1.7e9 + s * 0.5, loss: 3 - s + i / 10, id_loss: 1 / (s + 1), t: 300 });
  const steps = [0, 1, 2].map(step);
  writeFileSync(join(dir, 'metrics.jsonl'), steps.map((x) => JSON.stringify(x)).join('\n') + '\n');
  mkdirSync(join(dir, 'artifacts'), { recursive: true });
  const hqs = [100, 200, 300, 400].map((ts) => `${ts},${ts / 400},${1 - ts / 800},${ts / 400 - 0.5}`);
  writeFileSync(join(dir, 'artifacts', 'hqs.csv'), 't,N,H,hqs_paper\n' + hqs.join('\n') + '\n');
  writeFileSync(join(dir, 'artifacts', 'edits.png'), toPng(new Float32Array(8 * 8 * 3).fill(0.5), 8, 8));
  writeFileSync(join(dir, 'artifacts', 'items.json'), JSON.stringify({ prompt, hit, clip_directional: clip }));
  const features = new Map([
    ['original', f32([n, 16], fixtureFeatures(i))],
    ['edited', f32([n, 16], fixtureFeatures(i + 0.5))],
  ]);
  writeSafetensors(join(dir, 'artifacts', 'features.safetensors'), features);
}

/** Every interval, per method and per prompt, lies in its metric's range (and says what it is). */
type Records = Array<Record<string, unknown>>;

function checkIntervals(res: { methods: Records; prompts: Records }): void {
  let intervals = 0;
  for (const rec of [...res.methods, ...res.prompts])
    for (const { key: m, range } of METRICS) {
      const s = rec[m] as Summary | null | undefined;
      if (!s || s.lo === null || s.hi === null) continue;
      intervals++;
      const inside = range[0] <= s.lo && s.lo <= s.hi && s.hi <= range[1];
      assert.ok(inside, `${m} ${s.lo} … ${s.hi} outside ${range} (${s.interval})`);
      assert.ok(s.interval.length > 10);
    }
  assert.ok(intervals >= 20, `${intervals} intervals checked`);
  const clipped = res.prompts.map((p) => p.hit_rate as Summary);
  const t = '95% t over 2 seeds, clipped to [0, 1]';
  assert.ok(
    clipped.every((s) => s.lo === 0 && s.hi === 1 && s.interval === t),
    JSON.stringify(clipped[0]),
  );
  const boot = 'mean over 2 prompts; 95% bootstrap over (prompt, item) pairs and seeds within each prompt, ';
  assert.equal((res.methods[0].fid as Summary).interval, `${boot}200 resamples, seed 0`);
}

/** Where a test keeps its screenshots: $SDD_TEST_ARTIFACTS, else the test's temp dir (printed either way). */
function artifact(root: string, name: string): string {
  const dir = process.env.SDD_TEST_ARTIFACTS ?? root;
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}

/**
 * The page in headless chromium at a 1400 px viewport: no errors, every chart rendered with x and
 * y axis titles, human axis titles, no table wider than its box, the profile in the title.
 */
function checkInBrowser(path: string, shot: string, charts: number): void {
  screenshot(`file://${path}`, shot, 1400, 2400);
  const dom = dumpDom(`file://${path}`, 1400);
  const body = /<body([^>]*)>/.exec(dom)![1];
  assert.match(body, /data-errors="0"/);
  // The title names the experiment and its profile; the first table is headed by what it shows.
  assert.match(/<h1>([^<]*)/.exec(dom)![1], /^Fixture page — quick profile: 2 prompts, 2 seeds, 12 images per run/);
  assert.match(dom, /<p class="caption"><b>quick profile<\/b>/);
  assert.equal(/<h2>([^<]*)/.exec(dom)![1].trim(), 'FID, CLIP similarity and total time');
  // Layout at 1400 px: no table wider than its box (nothing cut off or scrolled), the page not either.
  assert.match(body, /data-page-overflow="0"/);
  assert.match(body, /data-scrolling-tables="0"/, body);
  // Every chart has an x and a y axis title (vega's accessible axis labels say "X-axis titled …").
  const chartDivs = dom.split('data-spec="spec-').slice(1);
  assert.equal(chartDivs.length, charts);
  for (const c of chartDivs) {
    const svg = c.slice(0, c.indexOf('</svg>'));
    assert.match(svg, /aria-label="X-axis titled /, svg.slice(0, 300));
    assert.match(svg, /aria-label="Y-axis titled /, svg.slice(0, 300));
  }
  // Axis titles are human names: no raw key (fid_lo, hit_rate_hi) in any rendered chart text.
  const texts = [...dom.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  assert.ok(texts.includes('FID (dist²) ↓') && texts.includes('hit rate (fraction) ↑'), texts.slice(0, 40).join(' | '));
  assert.deepEqual(
    texts.filter((t) => /_lo|_hi/.test(t)),
    [],
  );
  const panels = texts.includes('seconds per step') && texts.includes('id loss');
  assert.ok(panels, 'training panels: step durations, worded scalar names');
  const labels = [...dom.matchAll(/aria-label="([^"]*)"/g)].map((m) => m[1]);
  assert.deepEqual(
    labels.filter((t) => /\w_(lo|hi)\b/.test(t)),
    [],
    "nor in the charts' accessible labels",
  );
  assert.match(body, new RegExp(`data-rendered="${charts}"`));
  const shown = !/<script>window\.__pwned/.test(dom) && dom.includes('&lt;script&gt;window.__pwned');
  assert.ok(shown, 'the browser shows the tag as text, runs nothing');
}

test('a fixture page loads in headless chromium: charts render, no errors, strings escaped', async () => {
  const root = tmp();
  writeFiles(root, {
    'exp.yaml': `name: fixture
title: Fixture page
world: toyfaces
method:
  name: sdd
  params: { prompt: x, selection: { strategy: threshold, xi: 0.2 } }
seeds: [0, 1]
sweep:
  method.params.prompt: ["${EVIL}", "glasses:none->glasses"]
  method.params.lambda_l2: [1, 10]
profiles:
  quick: { method.params.eval_images: 12 }
`,
  });
  const store = new RunStore(join(root, 'runs'));
  const file = join(root, 'exp.yaml');
  const quick = { profile: 'quick' };
  const runs = planAll([file], quick);
  assert.equal(runs.length, 8);
  runs.forEach((r, i) => writeFixtureRun(store.prepare(r.id, r.config), r, i));
  const out = join(root, 'reports');
  const { pages } = await buildReport([file], quick, store, out);
  const html = readFileSync(pages[0].path, 'utf-8');
  assert.ok(!html.includes('<script>window.__pwned'), 'the prompt is escaped');
  assert.ok(html.includes('&lt;script&gt;window.__pwned=1&lt;/script&gt;'));
  const charts = (html.match(/class="chart"/g) ?? []).length;
  assert.ok(charts >= 5, `${charts} charts`);
  const csv = readFileSync(join(out, 'fixture', 'results.csv'), 'utf-8')
    .trim()
    .split('\n');
  assert.equal(csv.length, 3, 'header + one row per group (lambda_l2 = 1, 10)');
  const columns = /^method,(.*,)?fid,fid_ci95_lo,fid_ci95_hi,.*,interval,runs,flag$/;
  assert.match(csv[0], columns, 'the interval bounds and their unit are columns');
  checkIntervals(JSON.parse(readFileSync(join(out, 'fixture', 'results.json'), 'utf-8')));
  // Rows name what tells them apart (the swept λ_L2), not every sweep key.
  assert.ok(html.includes('>sdd lambda_l2=1<') && html.includes('>sdd lambda_l2=10<'));
  const shot = artifact(root, 'fixture-page.png');
  checkInBrowser(pages[0].path, shot, charts);
  assert.ok(readFileSync(shot).length > 10_000, 'screenshot written');
  process.stdout.write(`# screenshot of the fixture page at 1400 px: ${shot}\n`);
  // A later report of a file without finished runs writes no page (and says so); the index still
  // lists the fixture page with its title and counts (from its page.json).
  writeFiles(root, { 'other.yaml': 'name: other\nworld: toyfaces\nmethod: { name: toy_fit }\n' });
  const again = await buildReport([join(root, 'other.yaml')], {}, store, out);
  assert.deepEqual([again.pages, again.skipped], [[], [join(root, 'other.yaml')]]);
  const index = loadInChromium(`file://${join(out, 'index.html')}`);
  assert.match(index, /data-errors="0"/);
  assert.match(index, /Fixture page — quick profile[^<]*<\/td><td>[^<]*exp\.yaml<\/td><td>8\/8<\/td>/);
});
