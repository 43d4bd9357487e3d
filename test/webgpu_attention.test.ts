/**
 * The fused attention kernel (src/backend/kernels/attention.ts) on webgpu against the tfjs-ops
 * composite on the cpu backend: ragged tails (T not a multiple of the 64-row tiles), cross-
 * attention (Tk ≠ Tq), SD v1's head sizes 40, 80 and 160 (160: the smallest key tiles), and the
 * gradients w.r.t. q, k and v. Tolerance: max |Δ| ≤ 1e-4 · max |reference| (float32; the online
 * softmax sums in another order). Skipped, with the reason, where no WebGPU adapter exists.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { BackendChoiceError, initBackend, shutdownBackend } from '../src/backend/index.js';
import { releaseGpu } from '../src/backend/webgpu.js';
import { hasFusedAttention } from '../src/backend/kernels/attention.js';
import { attentionOps, scaledDotProductAttention } from '../src/nn/attention.js';
import { Rng } from '../src/util/rng.js';
import { assertClose } from './parity.js';

const CASES: Array<{ name: string; q: number[]; tk: number }> = [
  { name: 'self, T=77, d=40', q: [1, 2, 77, 40], tk: 77 },
  { name: 'cross, Tq=130, Tk=77, d=80', q: [2, 3, 130, 80], tk: 77 },
  { name: 'self, T=96, d=160', q: [1, 2, 96, 160], tk: 96 },
];

function data(shape: number[], seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
}

const inputs = CASES.map((c, i) => {
  const [b, h, , d] = c.q;
  const kv = [b, h, c.tk, d];
  return {
    name: c.name,
    qShape: c.q as [number, number, number, number],
    kvShape: kv as [number, number, number, number],
    q: data(c.q, 10 * i),
    k: data(kv, 10 * i + 1),
    v: data(kv, 10 * i + 2),
    dy: data(c.q, 10 * i + 3),
  };
});
type Input = (typeof inputs)[number];

/** Output and the gradients of Σ(out ⊙ dy) w.r.t. q, k, v. */
async function run(x: Input, attend: typeof attentionOps): Promise<Float32Array[]> {
  const [q, k, v] = [tf.tensor4d(x.q, x.qShape), tf.tensor4d(x.k, x.kvShape), tf.tensor4d(x.v, x.kvShape)];
  const dy = tf.tensor4d(x.dy, q.shape);
  const out = attend(q, k, v);
  const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
    tf.sum(tf.mul(attend(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D), dy)),
  )([q, k, v]);
  const res = [await out.data(), ...(await Promise.all(grads.map((g) => g.data())))] as Float32Array[];
  tf.dispose([q, k, v, dy, out, ...grads]);
  return res;
}

await initBackend('cpu');
const refs: Float32Array[][] = [];
for (const x of inputs) refs.push(await run(x, attentionOps));

let skipReason: string | null = null;
try {
  await initBackend('webgpu');
} catch (e) {
  if (!(e instanceof BackendChoiceError)) throw e;
  skipReason = `no WebGPU adapter: ${e.message}`;
  releaseGpu(undefined);
}
after(() => shutdownBackend());

test('webgpu has the fused attention kernel, and scaledDotProductAttention uses it', (t) => {
  if (skipReason) return t.skip(skipReason);
  assert.equal(tf.getBackend(), 'webgpu');
  assert.ok(hasFusedAttention('webgpu'));
});

for (const [i, x] of inputs.entries()) {
  test(`fused attention = ops composite (${x.name}): output and gradients`, async (t) => {
    if (skipReason) return t.skip(skipReason);
    const got = await run(x, scaledDotProductAttention);
    ['out', 'dq', 'dk', 'dv'].forEach((what, j) => assertClose(t, what, got[j], refs[i][j]));
  });
}
