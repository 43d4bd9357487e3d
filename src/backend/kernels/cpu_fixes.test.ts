/**
 * The cpu backend's ResizeNearestNeighborGrad (ours, kernels/cpu_fixes.ts) for batch 1–3:
 *   - against a numpy reference (the forward's index rule written out in numpy, dx by np.add.at),
 *     every combination of alignCorners / halfPixelCenters, the 2× upsample the models use and
 *     non-integer scales both ways; the cpu forward is checked against the same rule first;
 *   - against the wasm backend's own kernel, where wasm implements the same rule
 *     (halfPixelCenters off, which is what upsample2x uses);
 *   - tfjs 4.22's built-in, for the record: wrong from batch 2 on. When this last check fails, a
 *     tfjs upgrade fixed it: drop the replacement.
 * Tolerance: 1e-6 of the largest |dx|: both sides add the same float32 values, in different
 * orders (numpy in float64).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../index.js';
import { requirePython } from '../../util/python.js';
import { originalKernels } from './register.js';

const TOL = 1e-6;

interface Case {
  x: [number, number, number, number];
  size: [number, number];
  alignCorners: boolean;
  halfPixelCenters: boolean;
}

const CASES: Case[] = [];
for (const b of [1, 2, 3]) {
  for (const [alignCorners, halfPixelCenters] of [
    [false, false],
    [true, false],
    [false, true],
  ] as const) {
    CASES.push({ x: [b, 3, 5, 2], size: [6, 10], alignCorners, halfPixelCenters }); // upsample2x
    CASES.push({ x: [b, 4, 6, 3], size: [7, 4], alignCorners, halfPixelCenters }); // up in H, down in W
  }
}

const seeded = (n: number, seed: number) => {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
};
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const label = (c: Case) =>
  `[${c.x}] → ${c.size.join('×')} alignCorners=${c.alignCorners} halfPixelCenters=${c.halfPixelCenters}`;

/** Forward y and dx = ∂Σ(y·dy)/∂x on the active backend. */
function run(c: Case, x: Float32Array, dy: Float32Array): { y: Float32Array; dx: Float32Array } {
  return tf.tidy(() => {
    const xt = tf.tensor4d(x, c.x);
    const dyt = tf.tensor4d(dy, [c.x[0], ...c.size, c.x[3]]);
    const f = (a: tf.Tensor) =>
      tf.image.resizeNearestNeighbor(a as tf.Tensor4D, c.size, c.alignCorners, c.halfPixelCenters);
    const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(f(a), dyt)))(xt);
    return { y: f(xt).dataSync() as Float32Array, dx: dx.dataSync() as Float32Array };
  });
}

const NUMPY = `
import json, sys
import numpy as np
def src(n_in, n_out, align, half):
    e_in = n_in - 1 if align and n_out > 1 else n_in
    e_out = n_out - 1 if align and n_out > 1 else n_out
    frac = (np.arange(n_out) + (0.5 if half else 0.0)) * (e_in / e_out)
    s = np.floor(frac + 0.5) if align else np.floor(frac)  # JS Math.round: halves up (np.round: to even)
    s = np.minimum(n_in - 1, s)
    return np.maximum(0, s).astype(np.int64) if half else s.astype(np.int64)
out = []
for c in json.load(sys.stdin):
    b, h, w, d = c["x"]
    oh, ow = c["size"]
    x = np.array(c["xv"], np.float64).reshape(b, h, w, d)
    dy = np.array(c["dy"], np.float64).reshape(b, oh, ow, d)
    r, q = src(h, oh, c["align"], c["half"]), src(w, ow, c["align"], c["half"])
    y = x[:, r][:, :, q]
    dx = np.zeros_like(x)
    np.add.at(dx, (slice(None), r[:, None], q[None, :]), dy)
    out.append({"y": y.ravel().tolist(), "dx": dx.ravel().tolist()})
json.dump(out, sys.stdout)
`;

function maxRelErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  assert.equal(got.length, ref.length);
  let scale = 0;
  let err = 0;
  for (let i = 0; i < ref.length; i++) {
    scale = Math.max(scale, Math.abs(ref[i]));
    const d = Math.abs(got[i] - ref[i]);
    err = Math.max(err, Number.isNaN(d) ? Infinity : d);
  }
  return err / Math.max(scale, 1e-30);
}

const inputs = CASES.map((c, i) => ({
  x: seeded(size(c.x), 10 + i),
  dy: seeded(c.x[0] * c.size[0] * c.size[1] * c.x[3], 100 + i),
}));
const refs = JSON.parse(
  execFileSync(requirePython(['numpy']), ['-c', NUMPY], {
    input: JSON.stringify(
      CASES.map((c, i) => ({
        x: c.x,
        size: c.size,
        align: c.alignCorners,
        half: c.halfPixelCenters,
        xv: [...inputs[i].x],
        dy: [...inputs[i].dy],
      })),
    ),
    maxBuffer: 64 << 20,
  }).toString(),
) as Array<{ y: number[]; dx: number[] }>;

await initBackend('cpu');

test('cpu ResizeNearestNeighborGrad matches numpy for batch 1–3 (forward checked first)', () => {
  for (const [i, c] of CASES.entries()) {
    const { y, dx } = run(c, inputs[i].x, inputs[i].dy);
    assert.ok(maxRelErr(y, refs[i].y) === 0, `forward ${label(c)}: the numpy rule is not the cpu forward's`);
    const e = maxRelErr(dx, refs[i].dx);
    assert.ok(e <= TOL, `dx ${label(c)}: ${e}`);
  }
});

test('cpu ResizeNearestNeighborGrad matches wasm for batch 1–3 (halfPixelCenters off)', async () => {
  const cases = CASES.map((c, i) => [c, i] as const).filter(([c]) => !c.halfPixelCenters);
  const cpu = cases.map(([c, i]) => run(c, inputs[i].x, inputs[i].dy).dx);
  await initBackend('wasm');
  try {
    for (const [k, [c, i]] of cases.entries()) {
      const e = maxRelErr(cpu[k], run(c, inputs[i].x, inputs[i].dy).dx);
      assert.ok(e <= TOL, `cpu vs wasm ${label(c)}: ${e}`);
    }
  } finally {
    await initBackend('cpu');
  }
});

test("tfjs 4.22's own cpu kernel is still wrong for batch > 1 (the replacement is still needed)", () => {
  const builtin = originalKernels.get('cpu/ResizeNearestNeighborGrad');
  assert.ok(builtin, 'the built-in was replaced');
  const i = CASES.findIndex((c) => c.x[0] === 2 && !c.alignCorners && !c.halfPixelCenters);
  const c = CASES[i];
  const dx = tf.tidy(() => {
    const images = tf.tensor4d(inputs[i].x, c.x);
    const dy = tf.tensor4d(inputs[i].dy, [c.x[0], ...c.size, c.x[3]]);
    const out = builtin({
      inputs: { images, dy },
      backend: tf.backend(),
      attrs: { alignCorners: false, halfPixelCenters: false },
    }) as tf.TensorInfo;
    return tf.engine().makeTensorFromTensorInfo(out).dataSync() as Float32Array;
  });
  assert.ok(
    maxRelErr(dx, refs[i].dx) > 1e-3,
    'the built-in now agrees with numpy: a tfjs upgrade fixed it; remove kernels/cpu_fixes.ts',
  );
});
