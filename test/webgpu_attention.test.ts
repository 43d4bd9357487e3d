/**
 * The fused attention kernel (src/backend/kernels/attention.ts) on webgpu against the tfjs-ops
 * composite on the cpu backend: ragged tails (T not a multiple of the 64-row tiles), cross-
 * attention (Tk ≠ Tq), SD v1's head sizes 40, 80 and 160 (160: the smallest key tiles), and the
 * gradients w.r.t. q, k and v. The causal variant (CLIP's text tower: scaledDotProductAttention
 * with 'causal') against the composite with causalMask(T) added, at T = 77 (CLIP's text length,
 * not a multiple of the tiles), T = 1 and T = 130 (two row blocks; key tiles past a block's
 * diagonal skipped), several heads and batches, forward and gradients; and that it takes one
 * dispatch, the fused kernel's. Tolerance, all cases: max |Δ| ≤ 1e-4 · max |reference| (float32;
 * the online softmax sums in another order, and the causal kernel drops the masked keys that the
 * composite adds −1e9 to, whose exp is 0 in float32). Skipped, with the reason, where no WebGPU
 * adapter exists.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { BackendChoiceError, initBackend, poolCounters, shutdownBackend } from '../src/backend/index.js';
import { releaseGpu } from '../src/backend/webgpu.js';
import { hasFusedAttention } from '../src/backend/kernels/attention.js';
import { attentionOps, causalMask, scaledDotProductAttention } from '../src/nn/attention.js';
import { Rng } from '../src/util/rng.js';
import { assertClose } from './parity.js';

const CASES: Array<{ name: string; q: number[]; tk: number; causal?: boolean }> = [
  { name: 'self, T=77, d=40', q: [1, 2, 77, 40], tk: 77 },
  { name: 'cross, Tq=130, Tk=77, d=80', q: [2, 3, 130, 80], tk: 77 },
  { name: 'self, T=96, d=160', q: [1, 2, 96, 160], tk: 96 },
  { name: 'causal, B=2, H=3, T=77, d=40', q: [2, 3, 77, 40], tk: 77, causal: true },
  { name: 'causal, B=2, H=2, T=1, d=64', q: [2, 2, 1, 64], tk: 1, causal: true },
  { name: 'causal, B=1, H=2, T=130, d=80', q: [1, 2, 130, 80], tk: 130, causal: true },
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
    causal: c.causal === true,
    qShape: c.q as [number, number, number, number],
    kvShape: kv as [number, number, number, number],
    q: data(c.q, 10 * i),
    k: data(kv, 10 * i + 1),
    v: data(kv, 10 * i + 2),
    dy: data(c.q, 10 * i + 3),
  };
});
type Input = (typeof inputs)[number];
type Attend = (q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D) => tf.Tensor4D;

/** The reference: tfjs ops, with the additive causal mask where the case is causal. */
function reference(x: Input): Attend {
  return (q, k, v) => (x.causal ? attentionOps(q, k, v, causalMask(x.qShape[2])) : attentionOps(q, k, v));
}

/** What the models call: the fused kernel on webgpu, told 'causal' without a mask tensor. */
function fused(x: Input): Attend {
  return (q, k, v) => scaledDotProductAttention(q, k, v, x.causal ? 'causal' : undefined);
}

/** Output and the gradients of Σ(out ⊙ dy) w.r.t. q, k, v. */
async function run(x: Input, attend: Attend): Promise<Float32Array[]> {
  const [q, k, v] = [tf.tensor4d(x.q, x.qShape), tf.tensor4d(x.k, x.kvShape), tf.tensor4d(x.v, x.kvShape)];
  const dy = tf.tensor4d(x.dy, q.shape);
  const out = tf.tidy(() => attend(q, k, v));
  const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
    tf.sum(tf.mul(attend(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D), dy)),
  )([q, k, v]);
  const res = [await out.data(), ...(await Promise.all(grads.map((g) => g.data())))] as Float32Array[];
  tf.dispose([q, k, v, dy, out, ...grads]);
  return res;
}

await initBackend('cpu');
const refs: Float32Array[][] = [];
for (const x of inputs) refs.push(await run(x, reference(x)));

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
    const got = await run(x, fused(x));
    ['out', 'dq', 'dk', 'dv'].forEach((what, j) => assertClose(t, what, got[j], refs[i][j]));
  });
}

test('causal attention is one dispatch on webgpu, the fused kernel (no [T, T] mask or scores)', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const x = inputs.find((c) => c.causal)!;
  const [q, k, v] = [tf.tensor4d(x.q, x.qShape), tf.tensor4d(x.k, x.kvShape), tf.tensor4d(x.v, x.kvShape)];
  const before = poolCounters()!.dispatches;
  const out = scaledDotProductAttention(q, k, v, 'causal');
  await out.data();
  // The ops path would dispatch at least a matMul, the mask add, the softmax and a second matMul.
  assert.equal(poolCounters()!.dispatches - before, 1);
  tf.dispose([q, k, v, out]);
});
