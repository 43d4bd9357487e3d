/**
 * Replacement wasm kernels against the cpu backend's reference kernels, through tf.grad so the
 * whole path (gradient → our kernel) is exercised. Tolerance: relative error ≤ 1e-5 of the
 * largest magnitude (both sides accumulate float32 in different orders).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../index.js';
import { groupNormReference } from '../../nn/layers.js';
import { hasGroupNormKernel, groupNormFused } from './group_norm.js';

await initBackend('wasm');

type Pad = 'same' | 'valid' | number;
interface ConvCase {
  x: [number, number, number, number];
  k: [number, number, number, number];
  stride: number | [number, number];
  pad: Pad;
}

const convCases: ConvCase[] = [
  { x: [2, 8, 8, 3], k: [3, 3, 3, 4], stride: 1, pad: 'same' },
  { x: [2, 8, 8, 3], k: [3, 3, 3, 4], stride: 2, pad: 'same' },
  { x: [1, 9, 7, 2], k: [3, 3, 2, 5], stride: 2, pad: 'same' },
  { x: [1, 9, 7, 2], k: [3, 3, 2, 5], stride: 2, pad: 'valid' },
  { x: [2, 10, 10, 4], k: [4, 4, 4, 3], stride: 2, pad: 1 },
  { x: [3, 7, 11, 3], k: [1, 1, 3, 6], stride: 1, pad: 'valid' },
  { x: [2, 11, 9, 2], k: [5, 3, 2, 2], stride: [3, 2], pad: 'same' },
  { x: [1, 6, 6, 2], k: [2, 2, 2, 3], stride: 3, pad: 'valid' },
  { x: [4, 16, 16, 8], k: [3, 3, 8, 16], stride: 2, pad: 'same' },
];

function seeded(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, -1, 1, 'float32', seed);
}

/** Runs `fn` on `backend` with fresh copies of the inputs' values; returns plain arrays. */
async function on(
  backend: string,
  inputs: tf.Tensor[],
  fn: (...t: tf.Tensor[]) => tf.Tensor[],
): Promise<Float32Array[]> {
  const values = inputs.map((t) => ({ v: t.dataSync().slice(), shape: t.shape }));
  const prev = tf.getBackend();
  await tf.setBackend(backend);
  try {
    return tf
      .tidy(() => fn(...values.map(({ v, shape }) => tf.tensor(v, shape))))
      .map((t) => {
        const d = t.dataSync() as Float32Array;
        t.dispose();
        return d;
      });
  } finally {
    await tf.setBackend(prev);
  }
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string, tol = 1e-5): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 0;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  assert.ok(worst <= tol * Math.max(scale, 1e-12), `${what}: max abs error ${worst} > ${tol} × ${scale}`);
}

function padArg(p: Pad): 'same' | 'valid' | number {
  return p;
}

for (const [i, c] of convCases.entries()) {
  test(`conv2d gradients match cpu: x=${c.x} k=${c.k} stride=${c.stride} pad=${c.pad}`, async () => {
    const x = seeded(c.x, 10 + i);
    const w = seeded(c.k, 100 + i);
    const probe = (xx: tf.Tensor, ww: tf.Tensor) => {
      const y = tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.stride, padArg(c.pad));
      // A random projection makes dy non-uniform, so every tap of the kernels is checked.
      const proj = tf.randomUniform(y.shape, -1, 1, 'float32', 7);
      const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, padArg(c.pad)), proj)),
      )([xx, ww]);
      return [gx, gw];
    };
    const [wx, ww] = await on('wasm', [x, w], probe);
    const [cx, cw] = await on('cpu', [x, w], probe);
    assertClose(wx, cx, 'dx');
    assertClose(ww, cw, 'dW');
    tf.dispose([x, w]);
  });
}

test('depthwise conv gradients match cpu (delegated)', async () => {
  const x = seeded([2, 9, 9, 3], 1);
  const w = seeded([3, 3, 3, 2], 2);
  const probe = (xx: tf.Tensor, ww: tf.Tensor) =>
    tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.square(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'))),
    )([xx, ww]);
  const [wx, ww] = await on('wasm', [x, w], probe);
  const [cx, cw] = await on('cpu', [x, w], probe);
  assertClose(wx, cx, 'dx');
  assertClose(ww, cw, 'dW');
  tf.dispose([x, w]);
});

test('gather gradient and UnsortedSegmentSum match cpu (delegated)', async () => {
  const table = seeded([10, 4], 3);
  const rows = seeded([6, 4], 4);
  const ids = tf.tensor1d([0, 3, 3, 9, 1, 0], 'float32');
  const probe = (t: tf.Tensor, r: tf.Tensor, ix: tf.Tensor) => {
    const i32 = tf.cast(ix, 'int32') as tf.Tensor1D;
    const g = tf.grad((a: tf.Tensor) => tf.sum(tf.square(tf.gather(a, i32))))(t);
    return [g, tf.unsortedSegmentSum(r, i32, 12)];
  };
  const [wg, ws] = await on('wasm', [table, rows, ids], probe);
  const [cg, cs] = await on('cpu', [table, rows, ids], probe);
  assertClose(wg, cg, 'gather grad');
  assert.equal(ws.length, 12 * 4);
  assertClose(ws, cs, 'unsortedSegmentSum');
  tf.dispose([table, rows, ids]);
});

test("maxPool gradient matches cpu (wasm's own MaxPoolGrad is replaced: it was wrong)", async () => {
  const x = seeded([2, 14, 14, 3], 5);
  for (const [k, s] of [
    [1, 2],
    [2, 2],
    [3, 2],
    [3, 1],
  ] as const) {
    const probe = (t: tf.Tensor) => [
      tf.grad((a: tf.Tensor) =>
        tf.sum(
          tf.mul(
            tf.maxPool(a as tf.Tensor4D, k, s, 'valid'),
            tf
              .range(1, 1 + tf.maxPool(a as tf.Tensor4D, k, s, 'valid').size)
              .reshape(tf.maxPool(a as tf.Tensor4D, k, s, 'valid').shape),
          ),
        ),
      )(t),
    ];
    const [w] = await on('wasm', [x], probe);
    const [c] = await on('cpu', [x], probe);
    assertClose(w, c, `maxPool ${k}×${k}/${s} grad`);
  }
  x.dispose();
});

const matmulCases: Array<{ a: number[]; b: number[]; ta: boolean; tb: boolean }> = [
  { a: [37, 19], b: [37, 23], ta: true, tb: false },
  { a: [19, 37], b: [23, 37], ta: false, tb: true },
  { a: [37, 19], b: [23, 37], ta: true, tb: true },
  { a: [3, 40, 33], b: [3, 40, 35], ta: true, tb: false },
  { a: [3, 33, 40], b: [3, 35, 40], ta: false, tb: true },
  { a: [1, 65, 70], b: [4, 66, 65], ta: true, tb: true },
  { a: [4, 65, 70], b: [65, 9], ta: true, tb: false },
  // Equal batch dims above the size threshold: one 2-D product per matrix.
  { a: [2, 3, 40, 33], b: [2, 3, 33, 35], ta: false, tb: false },
  { a: [5, 64, 16], b: [5, 64, 16], ta: false, tb: true },
];

for (const c of matmulCases) {
  test(`batchMatMul (explicit transposes, per-matrix products) matches cpu: a=${c.a} b=${c.b} ta=${c.ta} tb=${c.tb}`, async () => {
    const a = seeded(c.a, 21);
    const b = seeded(c.b, 22);
    const probe = (x: tf.Tensor, y: tf.Tensor) => [tf.matMul(x, y, c.ta, c.tb)];
    const [w] = await on('wasm', [a, b], probe);
    const [r] = await on('cpu', [a, b], probe);
    assertClose(w, r, 'matMul');
    tf.dispose([a, b]);
  });
}

const groupNormCases: Array<{ x: [number, number, number, number]; groups: number }> = [
  { x: [2, 5, 4, 8], groups: 4 },
  { x: [3, 3, 3, 6], groups: 1 },
  { x: [4, 16, 16, 48], groups: 8 }, // a VAE block's shape
  { x: [2, 7, 9, 12], groups: 12 },
];

for (const c of groupNormCases) {
  test(`fused GroupNorm (wasm) matches autodiff of the plain ops (cpu): x=${c.x}, ${c.groups} groups`, async () => {
    assert.ok(hasGroupNormKernel('wasm'), 'the fused kernel is registered on wasm');
    assert.ok(!hasGroupNormKernel('cpu'), 'cpu keeps the composite: it is the reference');
    // Off-centre and scaled input: the variance must not come from a cancelling E[x²] − μ² in float32.
    const x = tf.add(tf.mul(seeded(c.x, 31), 3), 5);
    const gamma = tf.add(seeded([c.x[3]], 32), 1);
    const beta = seeded([c.x[3]], 33);
    const proj = seeded(c.x, 34);
    const probe = (norm: typeof groupNormReference) => (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const f = (a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(tf.mul(norm(a as tf.Tensor4D, gg, bb, c.groups), proj));
      return [norm(xx as tf.Tensor4D, g, b, c.groups), ...tf.grads(f)([xx, g, b])];
    };
    const fused = (a: tf.Tensor4D, g: tf.Tensor, b: tf.Tensor, groups: number) =>
      groupNormFused(a, g, b, groups, 1e-5) as tf.Tensor4D;
    const ours = await on('wasm', [x, gamma, beta], probe(fused));
    const ref = await on('cpu', [x, gamma, beta], probe(groupNormReference));
    ['y', 'dx', 'dgamma', 'dbeta'].forEach((what, i) => assertClose(ours[i], ref[i], what));
    tf.dispose([x, gamma, beta, proj]);
  });
}

test('replacement kernels leak no tensors or backend memory', async () => {
  await tf.setBackend('wasm');
  const x = seeded([2, 12, 12, 4], 5);
  const w = seeded([3, 3, 4, 6], 6);
  const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => {
    const y = tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same');
    // GroupNorm (fused kernel, two extra outputs), then a dense layer: its weight gradient takes
    // the transposed-matmul path.
    const n = groupNormFused(y, tf.ones([6]), tf.zeros([6]), 3, 1e-5) as tf.Tensor4D;
    const dense = tf.sum(tf.matMul(tf.reshape(n, [-1, 6]), tf.slice(tf.reshape(b, [36, 6]), [0, 0], [6, 4])));
    // And a batched product big enough for the per-matrix path (forward and both gradients).
    const m = tf.reshape(tf.tile(tf.reshape(b, [1, 216]), [3, 20]), [3, 72, 60]);
    return tf.add(dense, tf.sum(tf.matMul(m, m, false, true)));
  });
  tf.dispose(g([x, w])); // warm-up: first calls may allocate module-level state
  const before = tf.memory();
  for (let i = 0; i < 3; i++) tf.dispose(g([x, w]));
  const after = tf.memory();
  assert.equal(after.numTensors, before.numTensors, 'engine tensors');
  assert.equal(after.numDataBuffers, before.numDataBuffers, 'backend data buffers');
  assert.equal(after.numBytes, before.numBytes, 'bytes');
  tf.dispose([x, w]);
});
