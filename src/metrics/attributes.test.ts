/** Attribute edit accuracy and identity similarity on hand-made predictions; metric names in files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { editAccuracy, identitySimilarity } from './attributes.js';
import { getMetric, metricNames } from './registry.js';
import { registerBuiltinMethods } from '../methods/index.js';
import { loadExperiment } from '../experiments/load.js';
import { UserError } from '../errors.js';
import { tmp, writeFiles } from '../../test/helpers.js';

test('edit accuracy: hit, preservation (prediction vs prediction) and both', () => {
  const names = ['hair', 'glasses', 'pose'];
  const source = { names, classes: Int32Array.from([0, 0, 0, 1, 1, 0, 2, 0, 1]) };
  const edited = { names, classes: Int32Array.from([3, 0, 0, 3, 0, 0, 2, 0, 1]) };
  const r = editAccuracy(source, edited, 'hair', 3);
  assert.equal(r.n, 3);
  assert.deepEqual(
    r.per_item.map((x) => x.hit),
    [true, true, false],
  );
  assert.deepEqual(
    r.per_item.map((x) => x.preserved),
    [1, 0.5, 1],
  );
  assert.ok(Math.abs(r.hit_rate - 2 / 3) < 1e-12);
  assert.ok(Math.abs(r.preservation_rate - 2.5 / 3) < 1e-12);
  assert.ok(Math.abs(r.hit_and_preserved - 1 / 3) < 1e-12);
  assert.throws(() => editAccuracy(source, edited, 'smile', 1), /no classifier head for attribute 'smile'/);
});

test('identity similarity is the mean paired cosine', () => {
  const a = Float32Array.from([1, 0, 0, 1]);
  const b = Float32Array.from([1, 0, 1, 1]);
  const r = identitySimilarity(a, b, 2);
  assert.ok(Math.abs(r.per_item[1] - Math.SQRT1_2) < 1e-6);
  assert.ok(Math.abs(r.identity - (1 + Math.SQRT1_2) / 2) < 1e-6);
});

test('the metric table: names in table order, direction per module; experiment files no longer take metrics:', () => {
  registerBuiltinMethods();
  assert.ok(metricNames().includes('clip_directional'));
  assert.equal(getMetric('fid').better, 'lower');
  // The key was hashed into run ids but never read; it went (configs keep metrics: [] for the ids).
  const d = tmp();
  writeFiles(d, { 'e.yaml': 'name: m\nmethod: {name: toy_fit}\nmetrics: [fid]\n' });
  assert.throws(
    () => loadExperiment(join(d, 'e.yaml')),
    (e: Error) => e instanceof UserError && /e\.yaml: metrics: unknown key/.test(e.message),
  );
});
