/**
 * GroupNorm+SiLU (src/backend/kernels/group_norm_silu.ts, nn/layers groupNormSiluOp):
 *  - wasm: groupNormSiluOp is the unfused path, silu(groupNormOp(…)), to the bit (output and the
 *    gradients w.r.t. x, γ, β), so wasm runs and their ids do not move;
 *  - webgpu: the fused kernel against the unfused ops on the cpu backend, NHWC, for one and
 *    several groups, channels per group from 1 to 512 (over the 256-thread workgroup), eps 1e-5
 *    and 1e-6; output and gradients. Tolerance: max |Δ| ≤ 1e-4 · max |reference| (float32 sums
 *    in another order; measured ≤ ~1e-6). One dispatch forward, four backward;
 *  - webgpu: SiLU alone (src/backend/kernels/silu.ts) against the cpu ops
 *    (same tolerance), one dispatch forward.
 * The webgpu cases skip, with the reason, where no WebGPU adapter exists.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, poolCounters, shutdownBackend } from '../src/backend/index.js';
import { runCustomKernel } from '../src/backend/kernels/custom_kernel.js';
import { GROUP_NORM_SILU_GRAD } from '../src/backend/kernels/group_norm_silu.js';
import { groupNormOp, groupNormSiluOp, silu } from '../src/nn/layers.js';
import { Rng } from '../src/util/rng.js';
import { webgpuSkipReason } from './helpers.js';
import { assertClose } from './parity.js';

/** Relative tolerance of the webgpu kernel against the cpu ops (see the header). */
const TOL = 1e-4;

const CASES: Array<{ shape: [number, number, number, number]; groups: number; eps: number }> = [
  { shape: [2, 4, 4, 8], groups: 2, eps: 1e-5 },
  { shape: [2, 5, 3, 24], groups: 3, eps: 1e-6 },
  { shape: [1, 8, 8, 32], groups: 32, eps: 1e-5 },
  { shape: [1, 2, 3, 512], groups: 1, eps: 1e-5 },
];

function data(n: number, seed: number, mean = 0, std = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => mean + std * rng.normal());
}

const inputs = CASES.map((c, i) => {
  const n = c.shape.reduce((a, b) => a * b, 1);
  const ch = c.shape[3];
  // x off-centre and scaled, so the mean and variance matter.
  return {
    ...c,
    x: data(n, 10 * i, 0.5, 2),
    gamma: data(ch, 10 * i + 1, 1, 0.3),
    beta: data(ch, 10 * i + 2),
    dy: data(n, 10 * i + 3),
  };
});
type Input = (typeof inputs)[number];
type Op = (x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, groups: number, eps: number) => tf.Tensor4D;

/** Output and the gradients of Σ(out ⊙ dy) w.r.t. x, γ, β. */
async function run(c: Input, op: Op): Promise<Float32Array[]> {
  const x = tf.tensor4d(c.x, c.shape);
  const [gamma, beta] = [tf.tensor1d(c.gamma), tf.tensor1d(c.beta)];
  const dy = tf.tensor4d(c.dy, c.shape);
  const out = op(x, gamma, beta, c.groups, c.eps);
  const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
    tf.sum(tf.mul(op(a as tf.Tensor4D, g, b, c.groups, c.eps), dy));
  const grads = tf.grads(f)([x, gamma, beta]);
  const res = [await out.data(), ...(await Promise.all(grads.map((g) => g.data())))] as Float32Array[];
  tf.dispose([x, gamma, beta, dy, out, ...grads]);
  return res;
}

const unfused: Op = (x, gamma, beta, groups, eps) => silu(groupNormOp(x, gamma, beta, groups, eps));
const WHAT = ['y', 'dx', 'dγ', 'dβ'];

test('wasm: groupNormSiluOp is silu(groupNormOp(…)) to the bit, output and gradients', async () => {
  await initBackend('wasm');
  for (const c of inputs.slice(0, 2)) {
    const [got, ref] = [await run(c, groupNormSiluOp), await run(c, unfused)];
    got.forEach((g, j) => assert.deepEqual(g, ref[j], `${WHAT[j]} of ${c.shape}`));
  }
});

await initBackend('cpu');
const refs: Float32Array[][] = [];
for (const c of inputs) refs.push(await run(c, unfused));

const skipReason = await webgpuSkipReason();
after(() => {
  if (!skipReason) shutdownBackend();
});

for (const [i, c] of inputs.entries()) {
  test(`webgpu fused GroupNorm+SiLU = cpu ops (${c.shape}, ${c.groups} groups, eps ${c.eps})`, async (t) => {
    if (skipReason) return t.skip(skipReason);
    const got = await run(c, groupNormSiluOp);
    WHAT.forEach((what, j) => assertClose(t, what, got[j], refs[i][j], TOL));
  });
}

test('webgpu GroupNorm+SiLU: one dispatch forward, four backward', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const c = inputs[0];
  const [x, gamma, beta] = [tf.tensor4d(c.x, c.shape), tf.tensor1d(c.gamma), tf.tensor1d(c.beta)];
  const dy = tf.tensor4d(c.dy, c.shape);
  await Promise.all([x, gamma, beta, dy].map((v) => v.data())); // uploaded before counting
  const count = (f: () => tf.Tensor[]) => {
    const before = poolCounters()!.dispatches;
    const out = f();
    const n = poolCounters()!.dispatches - before;
    tf.dispose(out);
    return n;
  };
  assert.equal(
    count(() => [groupNormSiluOp(x, gamma, beta, c.groups, c.eps)]),
    1,
    'forward',
  );
  const grad = () => runCustomKernel(GROUP_NORM_SILU_GRAD, { dy, x, gamma, beta }, { groups: c.groups, eps: c.eps });
  assert.equal(count(grad), 4, 'backward');
  tf.dispose([x, gamma, beta, dy]);
});

test('webgpu SiLU kernel = cpu ops (output and gradient), one dispatch forward', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const c = inputs[1];
  const runSilu = async () => {
    const [x, dy] = [tf.tensor4d(c.x, c.shape), tf.tensor4d(c.dy, c.shape)];
    const before = poolCounters()?.dispatches ?? 0;
    const y = silu(x);
    const fwd = (poolCounters()?.dispatches ?? 0) - before;
    const [dx] = tf.grads((a: tf.Tensor) => tf.mul(silu(a), dy))([x]);
    const res = [await y.data(), await dx.data()] as Float32Array[];
    tf.dispose([x, dy, y, dx]);
    return { res, fwd };
  };
  const got = await runSilu();
  assert.equal(got.fwd, 1, 'forward dispatches');
  await initBackend('cpu');
  try {
    const ref = await runSilu();
    ['silu', 'd silu'].forEach((what, j) => assertClose(t, what, got.res[j], ref.res[j], TOL));
  } finally {
    await initBackend('webgpu');
  }
});
