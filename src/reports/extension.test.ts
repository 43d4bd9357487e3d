/**
 * The report's extension points, each added the way docs/extending.md says: a metric is one entry
 * of the metric table (registerMetric here, a line of METRIC_TABLE in src/metrics/registry.ts for a
 * built-in), and a method's chart is one report section listed in its `reportSections`. Neither
 * touches the page builder: the metric becomes a column, a bar chart and a results.json field; the
 * section's figure lands between the bar charts and the time chart. A method without the metric or
 * the section on the same page changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { tmp, writeFiles } from '../../test/helpers.js';
import { planAll } from '../experiments/plan.js';
import { registerBuiltinMethods } from '../methods/index.js';
import { registerMethod } from '../methods/registry.js';
import type { ReportSection } from '../methods/report.js';
import type { Method } from '../methods/types.js';
import { metricLabel, metricSpec, registerMetric } from '../metrics/registry.js';
import { RunStore } from '../runs/store.js';
import { SPEC_BASE } from '../util/charts.js';
import { buildReport } from './build.js';
import type { Summary } from './intervals.js';

registerBuiltinMethods();

// The metric: one entry (a score in [0, 1], higher is better, resampled over per-item values).
registerMetric({
  key: 'dummy_score',
  name: 'dummy score',
  better: 'higher',
  range: [0, 1],
  interval: { kind: 'items', key: 'dummy' },
  bars: true,
});

// The section: one object, listed by the method that draws it.
const dummySection: ReportSection = {
  id: 'dummy',
  order: 35,
  figures: (view) => [
    {
      id: 'dummy-runs',
      title: 'dummy score per run',
      spec: {
        ...SPEC_BASE,
        data: { values: view.runs.map((r) => ({ run: r.id, score: r.values.dummy_score })) },
        mark: 'bar',
        encoding: { x: { field: 'run', type: 'nominal' }, y: { field: 'score', type: 'quantitative' } },
      },
    },
  ],
};

const dummy: Method<{ prompt: string; level: number }> = {
  name: 'report_dummy',
  version: 1,
  description: 'a method that only exists on report pages (extension.test.ts)',
  params: z.strictObject({ prompt: z.string(), level: z.number().default(1) }),
  reportSections: [dummySection],
  // Its result keeps the score under another name: reportValues maps it to the table's key.
  reportValues: (m) => ({ dummy_score: m.raw_score }),
  run: () => Promise.reject(new Error('not run: the test writes its results')),
};
registerMethod(dummy);

function fixture(): { file: string; store: RunStore; raw: Map<string, number> } {
  const root = tmp();
  writeFiles(root, {
    'exp.yaml': `name: dummy
world: toyfaces
method: { name: report_dummy, params: { prompt: x } }
seeds: [0]
sweep:
  method.params.prompt: [a, b]
  method.params.level: [1, 2]
`,
  });
  const store = new RunStore(join(root, 'runs'));
  const file = join(root, 'exp.yaml');
  const raw = new Map<string, number>();
  planAll([file], {}).forEach((r, i) => {
    const dir = store.prepare(r.id, r.config);
    const dummyItems = Array.from({ length: 8 }, (_, k) => (k + i) / 10);
    const prompt = r.config.method.params.prompt;
    const metrics = { prompt, fid: 3 + i, tau_train_s: 1 + i, tau_infer_s: 0.5, raw_score: 0.45 + i / 10 };
    writeFileSync(join(dir, 'artifacts', 'items.json'), JSON.stringify({ dummy: dummyItems }));
    writeFileSync(join(dir, 'result.json'), JSON.stringify({ id: r.id, metrics }));
    raw.set(r.id, metrics.raw_score);
  });
  return { file, store, raw };
}

test('a metric (one table entry) and a report section (one listed object) reach the page', async () => {
  assert.equal(metricLabel('dummy_score'), 'dummy score ↑');
  assert.throws(() => registerMetric({ ...metricSpec('fid')! }), /already registered/);
  const { file, store, raw } = fixture();
  const out = tmp();
  const { pages } = await buildReport([file], {}, store, out);
  const html = readFileSync(pages[0].path, 'utf-8');
  const figures = [...html.matchAll(/<figure id="([^"]+)"/g)].map((m) => m[1]);
  // Order: bars (10), the method's section (35), time (40); no HQS or trade-off (not SDD, not SDEdit).
  assert.deepEqual(figures, ['bars-fid', 'bars-dummy_score', 'dummy-runs', 'time']);
  const csv = readFileSync(join(out, 'dummy', 'results.csv'), 'utf-8').split('\n')[0];
  assert.match(csv, /,dummy_score,dummy_score_ci95_lo,dummy_score_ci95_hi,/);
  const json = JSON.parse(readFileSync(join(out, 'dummy', 'results.json'), 'utf-8')) as {
    methods: Array<{ runs: string[]; dummy_score: Summary }>;
  };
  assert.equal(json.methods.length, 2, 'one row per level');
  // The row's value is the mean over its prompts of the method's reportValues (raw_score).
  const s = json.methods[0].dummy_score;
  const expected = json.methods[0].runs.reduce((a, id) => a + raw.get(id)!, 0) / 2;
  assert.ok(Math.abs(s.mean - expected) < 1e-12, `${s.mean} vs ${expected}`);
  assert.ok(s.lo !== null && s.hi !== null && 0 <= s.lo && s.lo < s.hi && s.hi <= 1, JSON.stringify(s));
  assert.match(s.interval, /bootstrap over \(prompt, item\) pairs/);
  assert.ok(html.includes('<th>dummy score ↑</th>'));
});
