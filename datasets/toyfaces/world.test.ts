/** toyfaces: determinism, splits, attribute statistics, edits that touch only what they edit. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import {
  EDITABLE,
  EDITABLE_NAMES,
  ATTRIBUTE_NAMES,
  isVisible,
  valuesOf,
  sampleFace,
  withAttribute,
  type EditableName,
} from './attributes.js';
import { render } from './render.js';
import { caption, partialCaption, EDIT_PROMPTS } from './captions.js';
import { SPLITS, editSet, face, manifest, seedOf } from './world.js';
import { toPng } from '../../src/util/image_io.js';
import { Rng } from '../../src/util/rng.js';

function changedPixels(a: Float32Array, b: Float32Array, tol: number): number {
  let n = 0;
  for (let i = 0; i < a.length; i += 3)
    if (Math.max(Math.abs(a[i] - b[i]), Math.abs(a[i + 1] - b[i + 1]), Math.abs(a[i + 2] - b[i + 2])) > tol) n++;
  return n;
}
const meanAbs = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

test('rendering is deterministic and seeds differ', () => {
  const a = render(sampleFace(42));
  assert.deepEqual(render(sampleFace(42)), a);
  assert.ok(meanAbs(a, render(sampleFace(43))) > 0.01);
  assert.ok(a.every((v) => v >= 0 && v <= 1));
  assert.equal(render(sampleFace(1), 64).length, 64 * 64 * 3);
});

test('splits are disjoint seed ranges with bounds checked', () => {
  const ranges = Object.values(SPLITS).map((s) => [s.from, s.from + s.count]);
  for (let i = 0; i < ranges.length; i++)
    for (let j = i + 1; j < ranges.length; j++) assert.ok(ranges[i][1] <= ranges[j][0] || ranges[j][1] <= ranges[i][0]);
  assert.equal(seedOf('test', 0), SPLITS.test.from);
  assert.throws(() => seedOf('val', SPLITS.val.count), /outside/);
  const m = manifest('val', 5);
  assert.equal(m.length, 5);
  assert.deepEqual(m[3].attrs, face('val', 3).attrs);
  assert.match(m[0].caption, /^a face with /);
});

test('every attribute value occurs about uniformly (2000 faces)', () => {
  const n = 2000;
  const counts = new Map<string, number>();
  for (let s = 0; s < n; s++) {
    const f = sampleFace(s);
    for (const k of ATTRIBUTE_NAMES) counts.set(`${k}=${f.attrs[k]}`, (counts.get(`${k}=${f.attrs[k]}`) ?? 0) + 1);
  }
  for (const k of ATTRIBUTE_NAMES) {
    const expected = n / valuesOf(k).length;
    for (const v of valuesOf(k)) {
      const c = counts.get(`${k}=${v}`) ?? 0;
      assert.ok(Math.abs(c - expected) < 0.25 * expected, `${k}=${v}: ${c} vs ${expected}`);
    }
  }
});

test('each edit changes the image, keeps the background corner, and leaves other attributes alone', () => {
  for (let s = 0; s < 40; s++) {
    const f = sampleFace(1000 + s);
    const base = render(f);
    for (const k of EDITABLE_NAMES) {
      for (const v of EDITABLE[k]) {
        if (v === f.attrs[k]) continue;
        // Hair colour on a bald head is invisible by design (only the eyebrows tint).
        if (k === 'hair_color' && f.attrs.hair_style === 'bald') continue;
        const g = withAttribute(f, k as EditableName, v as never);
        const img = render(g);
        // Visible at 32×32: at least 3 pixels change by more than 0.15 in some channel.
        assert.ok(
          changedPixels(img, base, 0.15) >= 3,
          `seed ${f.seed} ${k}: ${f.attrs[k]}→${v} changed ${changedPixels(img, base, 0.15)} pixels`,
        );
        for (const c of [0, 1, 2]) assert.equal(img[c], base[c], 'top-left corner (background) unchanged');
        for (const other of ATTRIBUTE_NAMES) if (other !== k) assert.equal(g.attrs[other], f.attrs[other]);
        assert.deepEqual(g.jitter, f.jitter);
      }
    }
  }
});

test('captions name the attributes; partial captions are non-empty subsets', () => {
  const f = sampleFace(7);
  const c = caption({ ...f.attrs, hair_style: 'long', hair_color: 'red', pose: 'side' });
  assert.match(c, /red hair/);
  assert.match(c, /long hair/);
  assert.match(c, /side view/);
  assert.doesNotMatch(caption({ ...f.attrs, hair_style: 'bald', hair_color: 'red' }), /red hair/);
  const rng = new Rng(3);
  for (let i = 0; i < 50; i++) {
    const p = partialCaption(f.attrs, rng);
    const phrases = p.replace('a face with ', '').split(', ');
    assert.ok(phrases.length >= 1);
    for (const ph of phrases) assert.ok(caption(f.attrs).includes(ph), `${ph} in full caption`);
  }
});

test('at least 10 edit prompts, each with ground-truth source/target pairs in the test split', () => {
  assert.ok(EDIT_PROMPTS.length >= 10);
  assert.equal(new Set(EDIT_PROMPTS.map((p) => p.id)).size, EDIT_PROMPTS.length);
  for (const p of EDIT_PROMPTS) {
    assert.ok(valuesOf(p.attribute).includes(p.source) && valuesOf(p.attribute).includes(p.target), p.id);
    const pairs = editSet(p, 100);
    assert.equal(pairs.length, 100);
    for (const { source, target } of pairs.slice(0, 5)) {
      assert.equal(source.attrs[p.attribute], p.source);
      assert.ok(isVisible(source.attrs, p.attribute), `${p.id}: edits only faces where the attribute shows`);
      assert.equal(target.attrs[p.attribute], p.target);
      assert.equal(target.seed, source.seed);
    }
  }
});

test('PNG encoding round-trips the 8-bit pixels', () => {
  const img = render(sampleFace(5));
  const back = PNG.sync.read(toPng(img, 32, 32));
  for (let i = 0; i < 32 * 32; i++)
    for (let c = 0; c < 3; c++) assert.equal(back.data[i * 4 + c], Math.round(img[i * 3 + c] * 255));
});

test('CLI: world manifest (csv, jsonl) and grid', async () => {
  const { sdd, tmp } = await import('../../test/helpers.js');
  const csv = await sdd(['world', 'manifest', '--split', 'val', '--n', '4']);
  assert.equal(csv.exitCode, 0, csv.all);
  const lines = csv.stdout.trim().split('\n');
  assert.equal(lines.length, 5);
  assert.match(
    lines[0],
    /^split,index,seed,hair_color,hair_style,expression,glasses,pose,skin_tone,face_shape,eye_color,background,caption$/,
  );
  assert.match(lines[1], /^val,0,1000000,/);
  const jsonl = await sdd(['world', 'manifest', '--split', 'val', '--n', '2', '--format', 'jsonl']);
  assert.deepEqual(JSON.parse(jsonl.stdout.trim().split('\n')[1]).attrs, face('val', 1).attrs);
  const out = `${tmp()}/g.png`;
  const g = await sdd(['world', 'grid', '--n', '2', '--out', out]);
  assert.equal(g.exitCode, 0, g.all);
  const { readFileSync } = await import('node:fs');
  const png = PNG.sync.read(readFileSync(out));
  assert.equal(png.width, 6 * (32 * 4 + 2) + 2);
  assert.equal(png.height, 2 * (32 * 4 + 2) + 2);
  assert.equal((await sdd(['world', 'grid', '--n', '2'])).exitCode, 2);
});
