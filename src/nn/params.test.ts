/** Params: seeded creation for training; strict, verified stores for weights loaded from a file. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { backendFromEnv, initBackend } from '../backend/index.js';
import { Params, ParamsError, type LoadedTensor } from './params.js';
import { linear } from './layers.js';

await initBackend(backendFromEnv());

const tensor = (shape: number[], v = 1): LoadedTensor => ({
  shape,
  values: new Float32Array(shape.reduce((a, d) => a * d, 1)).fill(v),
});

/** A two-layer model: l1 [3 → 4], l2 [4 → 2]. */
const model = (p: Params) => linear(p, 'l2', linear(p, 'l1', tf.ones([1, 3]), 4), 2);

test('a training store creates missing parameters, seeded by name', async () => {
  const a = new Params(5);
  const b = new Params(5);
  model(a);
  model(b);
  assert.deepEqual([...a.vars.keys()].sort(), ['l1.bias', 'l1.weight', 'l2.bias', 'l2.weight']);
  assert.deepEqual([...(await a.vars.get('l1.weight')!.data())], [...(await b.vars.get('l1.weight')!.data())]);
  assert.equal(a.source, null);
  a.dispose();
  b.dispose();
});

test('a loaded store never creates a parameter: a missing or mis-shaped one is a ParamsError naming file and key', () => {
  const p = Params.loaded('m.safetensors', [
    ['l1.weight', tensor([3, 4])],
    ['l1.bias', tensor([5])],
  ]);
  assert.throws(
    () => p.get('l2.weight', [4, 2], { kind: 'zeros' }),
    (e: unknown) =>
      e instanceof ParamsError && /^m\.safetensors: has no tensor l2\.weight \[4,2\]/.test((e as Error).message),
  );
  assert.throws(
    () => p.get('l1.bias', [4], { kind: 'zeros' }),
    (e: unknown) =>
      e instanceof ParamsError && (e as Error).message === 'm.safetensors: l1.bias is [5], the model expects [4]',
  );
  assert.equal(p.vars.size, 2, 'nothing was created');
  assert.equal(p.get('l1.weight', [3, 4], { kind: 'zeros' }).shape.join(), '3,4');
  p.dispose();
});

test('verify names missing, unexpected and mis-shaped tensors on one line, and leaks nothing', () => {
  const before = tf.memory().numTensors;
  const p = Params.loaded('cand.safetensors', [
    ['l1.weight', tensor([3, 4])],
    ['l1.bias', tensor([3])],
    ['extra.a', tensor([1])],
    ['extra.b', tensor([1])],
  ]);
  let msg = '';
  try {
    p.verify(model);
  } catch (e) {
    assert.ok(e instanceof ParamsError);
    msg = e.message;
  }
  assert.equal(
    msg,
    'cand.safetensors: does not fit the model (4 model tensors, 4 in the file): missing 2 (l2.weight, l2.bias); unexpected 2 (extra.a, extra.b); wrong shape 1 (l1.bias is [3], the model expects [4])',
  );
  p.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test('verify passes a complete file, lists at most four names of many, and refuses a training store', () => {
  const ok = Params.loaded('ok', [
    ['l1.weight', tensor([3, 4])],
    ['l1.bias', tensor([4])],
    ['l2.weight', tensor([4, 2])],
    ['l2.bias', tensor([2])],
  ]);
  ok.verify(model);
  ok.dispose();
  const none = Params.loaded(
    'other',
    Array.from({ length: 9 }, (_, i) => [`x${i}`, tensor([1])] as const),
  );
  assert.throws(
    () => none.verify(model),
    /^ParamsError: other: .*missing 4 \(l1\.weight, l1\.bias, l2\.weight, l2\.bias\); unexpected 9 \(x0, x1, x2, x3, … 5 more\)$/,
  );
  none.dispose();
  assert.throws(() => new Params(0).verify(model), /only a loaded store/);
});

test('verify reports a model that fails on the file instead of crashing', () => {
  const p = Params.loaded('f', [
    ['l1.weight', tensor([3, 4])],
    ['l1.bias', tensor([4])],
    ['l2.weight', tensor([4, 2])],
    ['l2.bias', tensor([2])],
  ]);
  assert.throws(
    () => p.verify((q) => tf.matMul(q.get('l1.weight', [3, 4], { kind: 'zeros' }), tf.ones([5, 1]))),
    (e: unknown) =>
      e instanceof ParamsError &&
      /^f: does not fit the model .*: the model failed on it \(/.test((e as Error).message) &&
      !/unexpected/.test((e as Error).message),
  );
  p.dispose();
});

test('memo makes derived tensors once, remakes them when a source is assigned, and disposes them with the store', () => {
  const p = new Params(1);
  const w = p.get('w', [3], { kind: 'normal', std: 1 });
  let made = 0;
  const double = () =>
    p.memo('w2', [w], () => {
      made++;
      return [tf.mul(w, 2)];
    });
  const before = tf.memory().numTensors;
  const [a] = tf.tidy(() => double());
  const [b] = double();
  assert.equal(made, 1);
  assert.equal(a, b, 'the second call returns the kept tensor');
  assert.equal(tf.memory().numTensors, before + 1, 'one kept tensor, no intermediates');
  w.assign(tf.tensor1d([1, 2, 3]));
  const [c] = double();
  assert.equal(made, 2);
  assert.deepEqual([...c.dataSync()], [2, 4, 6]);
  assert.ok(a.isDisposed, 'the stale value is disposed');
  p.dispose();
  assert.ok(c.isDisposed);
});
