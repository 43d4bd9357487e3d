/**
 * Report pages without a browser: row labels name what differs between a method's rows (not per
 * method), one number format per column, the "no edit" flag, and a title that changes no run id.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tmp, writeFiles } from '../../test/helpers.js';
import { planAll } from '../experiments/plan.js';
import { registerBuiltinMethods } from '../methods/index.js';
import { RunStore } from '../runs/store.js';
import { groupsOf } from './groups.js';
import { cellText, columnDecimals, fmtSig, interval } from './html.js';
import { noEditFlag } from './tables.js';

registerBuiltinMethods();

const SDEDIT = `include: ${join(process.cwd(), 'experiments/base/sdedit.yaml')}
seeds: [0]
`;
const TWO = 'method.params.prompt: [hair_color:black->white, pose:frontal->side]';

test('rows are labelled by the params that differ between the rows of a method', () => {
  const root = tmp();
  writeFiles(root, {
    'a.yaml': `${SDEDIT}name: a\nsweep: { ${TWO} }\nmethod: { name: sdedit, params: { strength: 0.5 } }\n`,
    'b.yaml': `${SDEDIT}name: b\nsweep: { method.params.strength: [0.3, 0.7], method.params.prompt: [hair_color:black->white] }\n`,
    // A where: rule sets a param for one prompt only: it is no row's, so no label's.
    'c.yaml': `include: ${join(process.cwd(), 'experiments/base/sdd.yaml')}\nname: c\nsweep: { ${TWO} }\n`,
  });
  const planned = planAll(
    ['a.yaml', 'b.yaml', 'c.yaml'].map((f) => join(root, f)),
    {},
  );
  const groups = groupsOf(planned, new RunStore(join(root, 'runs')));
  assert.deepEqual(
    groups.map((g) => [g.label, g.planned]),
    [
      ['sdedit strength=0.5', 2],
      ['sdedit strength=0.3', 1],
      ['sdedit strength=0.7', 1],
      ['sdd', 2],
    ],
  );
});

test('a title is not part of run ids', () => {
  const root = tmp();
  const body = `include: ${join(process.cwd(), 'experiments/base/sdd.yaml')}\nname: t\n`;
  writeFiles(root, { 'plain.yaml': body, 'titled.yaml': `${body}title: "A human title"\n` });
  const ids = (f: string) => planAll([join(root, f)], { profile: 'quick' }).map((r) => r.id);
  assert.deepEqual(ids('titled.yaml'), ids('plain.yaml'));
});

test('one number format per column; tiny numbers with an exponent; intervals as [a, b]', () => {
  const fid = [2.11, 466, 1140];
  const d = columnDecimals(fid);
  assert.deepEqual(
    fid.map((v) => cellText({ v }, d)),
    ['2.1', '466.0', '1140.0'],
  );
  const hit = [0, 0.0625, 1, 2];
  assert.deepEqual(
    hit.map((v) => cellText({ v }, columnDecimals(hit))),
    ['0.000', '0.063', '1.000', '2.000'],
  );
  assert.equal(cellText({ v: 0.037, lo: -0.0000112, hi: 0.082 }, 3), '0.037 [0.000, 0.082]', 'no "-0.000"');
  assert.equal(cellText(2, null), '2', 'plain numbers are counts');
  assert.equal(fmtSig(-0.0000105), '-1.05e-5');
  assert.equal(fmtSig(0.00055, 2), '5.5e-4');
  assert.equal(interval(-0.0000105, -0.00000309), '[-1.05e-5, -3.09e-6]');
  assert.equal(interval(0.5, 12.25), '[0.5, 12.3]');
});

test('a row whose edits changed nothing is flagged', () => {
  assert.equal(noEditFlag(0, 0.985), 'no edit');
  assert.equal(noEditFlag(0.3, 0.985), null);
  assert.equal(noEditFlag(0, 0.5), null, 'attributes changed, only not the asked one');
  assert.equal(noEditFlag(null, 1), null);
});
