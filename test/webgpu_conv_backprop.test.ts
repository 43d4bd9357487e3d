/**
 * Our webgpu Conv2DBackpropFilter/Input (src/backend/kernels/webgpu_conv_backprop.ts: tiled implicit
 * GEMMs) against the cpu backend's, through tf.grads of tf.conv2d as the models call it, NHWC:
 *   - strides 1 and 2, filters 1×1, 3×3 and 4×4 (and 2×3), SAME, VALID and explicit pads, odd
 *     channel counts (3, 5, 7), batch 1 and 3;
 *   - a filter gradient whose K (batch·outH·outW) is split over workgroups (split-K: partial sums,
 *     then their sum in split order), asserted to split;
 *   - under a small binding cap (setBindingLimit, as test/webgpu_memory.test.ts) the batch split
 *     (webgpu_batch_split.ts) wraps our kernels: chunks of ours, asserted by their pipelines;
 *   - results are the same run to run, to the bit (no atomics);
 *   - SDD_WEBGPU_CONV_BACKPROP's switch (setConvBackprop('tfjs')) gives tfjs's kernels back.
 * Tolerance: max |Δ| ≤ 1e-4 · max |cpu| per gradient (float32 sums in another order; measured on
 * lavapipe ≤ ~1e-6). Without a WebGPU adapter the webgpu tests skip with the reason.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import { initBackend, shutdownBackend } from '../src/backend/index.js';
import { setBindingLimit } from '../src/backend/webgpu_pool.js';
import { filterGemm } from '../src/backend/kernels/webgpu_conv_filter.js';
import { setConvBackprop } from '../src/backend/kernels/webgpu_conv_backprop.js';
import { webgpuSkipReason } from './helpers.js';
import { assertClose } from './parity.js';

/** Relative tolerance against the cpu backend (see the header). */
const TOL = 1e-4;

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
interface Case {
  name: string;
  x: [number, number, number, number];
  /** [kh, kw, ci, co] */
  w: [number, number, number, number];
  stride: number;
  pad: Pad;
}

const explicit = (t: number, b: number, l: number, r: number): Pad => [
  [0, 0],
  [t, b],
  [l, r],
  [0, 0],
];

const CASES: Case[] = [
  { name: '3×3/1 same, ci 5 co 7, batch 3', x: [3, 9, 8, 5], w: [3, 3, 5, 7], stride: 1, pad: 'same' },
  { name: '1×1/1 valid, ci 3 co 64, batch 1', x: [1, 6, 7, 3], w: [1, 1, 3, 64], stride: 1, pad: 'valid' },
  { name: '3×3/2 same, ci 7 co 33, batch 3', x: [3, 11, 10, 7], w: [3, 3, 7, 33], stride: 2, pad: 'same' },
  {
    name: '4×4/2 explicit (1,2,2,1), ci 3 co 5',
    x: [1, 10, 9, 3],
    w: [4, 4, 3, 5],
    stride: 2,
    pad: explicit(1, 2, 2, 1),
  },
  { name: '1×1/2 valid, ci 70 co 3, batch 3', x: [3, 7, 8, 70], w: [1, 1, 70, 3], stride: 2, pad: 'valid' },
  {
    name: '2×3/1 explicit (2,0,1,1), ci 65 co 17',
    x: [1, 5, 6, 65],
    w: [2, 3, 65, 17],
    stride: 1,
    pad: explicit(2, 0, 1, 1),
  },
  { name: '4×4/1 valid, ci 16 co 32, batch 3', x: [3, 8, 8, 16], w: [4, 4, 16, 32], stride: 1, pad: 'valid' },
  // K = 2·48·48 = 4608 over a one-tile output: split-K (asserted below).
  { name: 'split-K: 3×3/1 same, ci 4 co 8, batch 2', x: [2, 48, 48, 4], w: [3, 3, 4, 8], stride: 1, pad: 'same' },
];
const SPLIT_K_CASE = CASES[CASES.length - 1];

/**
 * Under this binding cap the capped case's x and dx (3 images of 0.25 MiB) split, one image per
 * chunk (2×2/2: tfjs's forward conv then needs no im2col buffer above the cap).
 */
const CAP = 384 * 1024;
const CAPPED: Case = {
  name: 'batch-split 2×2/2 valid',
  x: [3, 32, 32, 64],
  w: [2, 2, 64, 24],
  stride: 2,
  pad: 'valid',
};

/** Deterministic values in [−1, 1]. */
const wave = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k + k));
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** dx and dw of Σ(conv2d(x, w) ⊙ dy) on the active backend. */
async function grads(c: Case): Promise<Float32Array[]> {
  const x = tf.tensor4d(wave(size(c.x), 0.37), c.x);
  const w = tf.tensor4d(wave(size(c.w), 0.71), c.w);
  const f = (xi: tf.Tensor, wi: tf.Tensor) => tf.conv2d(xi as tf.Tensor4D, wi as tf.Tensor4D, c.stride, c.pad);
  const outShape = tf.tidy(() => f(x, w).shape);
  const dy = tf.tensor(wave(size(outShape), 0.13), outShape);
  const gs = tf.grads(f)([x, w], dy);
  const res = (await Promise.all(gs.map((g) => g.data()))) as Float32Array[];
  tf.dispose([x, w, dy, ...gs]);
  return res;
}

await initBackend('cpu');
const refs = await Promise.all([...CASES, CAPPED].map(grads));

const skipReason = await webgpuSkipReason();
after(() => {
  if (!skipReason) shutdownBackend();
});

for (const [i, c] of CASES.entries()) {
  test(`webgpu conv backprop = cpu: ${c.name}`, async (t) => {
    if (skipReason) return t.skip(skipReason);
    const got = await grads(c);
    assertClose(t, 'dx', got[0], refs[i][0], TOL);
    assertClose(t, 'dw', got[1], refs[i][1], TOL);
  });
}

test('the split-K case splits K, and its filter gradient is the same run to run', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const c = SPLIT_K_CASE;
  const info = backend_util.computeConv2DInfo(c.x, c.w, c.stride, 1, c.pad as 'same');
  const g = filterGemm(info, 1 << 30);
  t.diagnostic(`K ${g.k} in ${g.splits} splits of ${g.chunk}`);
  assert.ok(g.splits > 1, `K = ${g.k}: ${g.splits} split`);
  const [a, b] = [await grads(c), await grads(c)];
  assert.deepEqual(b, a);
});

/** Keys of the backend's compiled pipelines (tfjs-backend-webgpu 4.22's private pipelineCache). */
const pipelines = () => Object.keys((tf.backend() as unknown as { pipelineCache: object }).pipelineCache);

test('under a small binding cap the batch split runs our kernels in chunks', async (t) => {
  if (skipReason) return t.skip(skipReason);
  setBindingLimit(CAP);
  try {
    const got = await grads(CAPPED);
    assertClose(t, 'dx', got[0], refs[CASES.length][0], TOL);
    assertClose(t, 'dw', got[1], refs[CASES.length][1], TOL);
  } finally {
    setBindingLimit(null);
  }
  // One image per chunk: our programs compiled for batch 1 (dx: B = 1; dw: M = 2·2·64, N = 24, K = 1·16·16).
  const keys = pipelines();
  assert.ok(
    keys.some((k) => k.startsWith('sdd_conv_dx_1_32_32_64_')),
    'no chunked dx program of ours',
  );
  assert.ok(
    keys.some((k) => k.startsWith('sdd_conv_dw_256_24_256_')),
    'no chunked dw program of ours',
  );
});

test("setConvBackprop('tfjs') gives tfjs's kernels back (same gradients)", async (t) => {
  if (skipReason) return t.skip(skipReason);
  const c = CASES[2];
  setConvBackprop('tfjs');
  try {
    const before = pipelines().length;
    const got = await grads(c);
    assert.ok(
      pipelines()
        .slice(before)
        .every((k) => !k.startsWith('sdd_conv_')),
      'ours ran',
    );
    assertClose(t, 'dx', got[0], refs[2][0], TOL);
    assertClose(t, 'dw', got[1], refs[2][1], TOL);
  } finally {
    setConvBackprop('ours');
  }
});
