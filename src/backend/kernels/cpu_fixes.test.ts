/**
 * Our replacements of tfjs 4.22's resize gradients (kernels/cpu_fixes.ts), batch 1–3:
 *   - ResizeNearestNeighborGrad (cpu) and ResizeBilinearGrad (cpu and wasm) against a numpy
 *     reference: the cpu forward's index rule written out in numpy, dx by np.add.at (the exact
 *     adjoint), every combination of alignCorners / halfPixelCenters, the 2× upsample the models
 *     use, the 2× downsample the paper world's resizes are, non-integer scales both ways; the
 *     forward is checked against the same rule first (the cpu's bit-equal; wasm's within
 *     WASM_FORWARD_TOL: it interpolates in float32);
 *   - against the wasm backend: nearest where wasm implements the same rule (halfPixelCenters
 *     off, which is what upsample2x uses); bilinear everywhere against numpy (wasm's own forward
 *     and our gradient kernel, registered for wasm too);
 *   - tfjs 4.22's built-ins, for the record: nearest wrong from batch 2 on, bilinear (cpu and
 *     wasm) wrong under halfPixelCenters. When one of these checks fails, a tfjs upgrade fixed it:
 *     drop that replacement.
 * Tolerance: 1e-6 of the largest |dx|: both sides add the same products, in different orders and
 * precisions (ours float64 rounded once to float32, numpy float64); measured ≤ 9e-8.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, shutdownBackend } from '../index.js';
import { requirePython } from '../../util/python.js';
import { originalKernels } from './register.js';

const TOL = 1e-6;
// wasm's bilinear forward interpolates in float32 (the cpu's and numpy's in float64, then rounded):
// measured 1.2e-6 of max |y|.
const WASM_FORWARD_TOL = 5e-6;
// webgpu (kernels/webgpu_fixes.ts) computes taps, weights and sums in float32 on the device:
// measured forward 1.2e-6, dx 7.5e-7 of max |y|, max |dx| (lavapipe).
const WEBGPU_TOL = 5e-6;

type Kind = 'nearest' | 'bilinear';

interface Case {
  kind: Kind;
  x: [number, number, number, number];
  size: [number, number];
  alignCorners: boolean;
  halfPixelCenters: boolean;
}

/** Input H, W → output H, W: the shapes each kernel is tried at. */
type Shape = [number, number, number, number];
const SHAPES: Record<Kind, Shape[]> = {
  nearest: [
    [3, 5, 6, 10], // upsample2x
    [4, 6, 7, 4], // up in H, down in W
  ],
  bilinear: [
    [3, 5, 6, 10], // 2× up
    [8, 6, 4, 3], // 2× down (the paper world's 1024 → 512)
    [6, 7, 4, 3], // non-integer down (CLIP's 48 → 32)
    [4, 6, 7, 4], // up in H, down in W
    [13, 11, 3, 2], // large factors both ways: webgpu's gather windows
    [2, 3, 9, 11],
  ],
};

const CASES: Case[] = [];
for (const kind of ['nearest', 'bilinear'] as const) {
  for (const b of [1, 2, 3]) {
    for (const [alignCorners, halfPixelCenters] of [
      [false, false],
      [true, false],
      [false, true],
    ] as const) {
      for (const [h, w, oh, ow] of SHAPES[kind])
        CASES.push({ kind, x: [b, h, w, 3], size: [oh, ow], alignCorners, halfPixelCenters });
    }
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
  `${c.kind} [${c.x}] → ${c.size.join('×')} alignCorners=${c.alignCorners} halfPixelCenters=${c.halfPixelCenters}`;

const resize = (c: Case, a: tf.Tensor) =>
  (c.kind === 'nearest' ? tf.image.resizeNearestNeighbor : tf.image.resizeBilinear)(
    a as tf.Tensor4D,
    c.size,
    c.alignCorners,
    c.halfPixelCenters,
  );

/** Forward y and dx = ∂Σ(y·dy)/∂x on the active backend (read asynchronously: webgpu has no dataSync). */
async function run(c: Case, x: Float32Array, dy: Float32Array): Promise<{ y: Float32Array; dx: Float32Array }> {
  const [y, dx] = tf.tidy(() => {
    const xt = tf.tensor4d(x, c.x);
    const dyt = tf.tensor4d(dy, [c.x[0], ...c.size, c.x[3]]);
    return [resize(c, xt), tf.grad((a: tf.Tensor) => tf.sum(tf.mul(resize(c, a), dyt)))(xt)];
  });
  assert.deepEqual(dx.shape, c.x, `dx's shape ${label(c)}`);
  const out = { y: (await y.data()) as Float32Array, dx: (await dx.data()) as Float32Array };
  tf.dispose([y, dx]);
  return out;
}

const NUMPY = `
import json, sys
import numpy as np
def ratio(n_in, n_out, align):
    e_in = n_in - 1 if align and n_out > 1 else n_in
    e_out = n_out - 1 if align and n_out > 1 else n_out
    return e_in / e_out
def src(n_in, n_out, align, half):
    frac = (np.arange(n_out) + (0.5 if half else 0.0)) * ratio(n_in, n_out, align)
    s = np.floor(frac + 0.5) if align else np.floor(frac)  # JS Math.round: halves up (np.round: to even)
    s = np.minimum(n_in - 1, s)
    return np.maximum(0, s).astype(np.int64) if half else s.astype(np.int64)
def taps(n_in, n_out, align, half):
    o = np.arange(n_out, dtype=np.float64)
    r = ratio(n_in, n_out, align)
    s = r * (o + 0.5) - 0.5 if half else r * o
    lo = np.maximum(0, np.floor(s))
    return lo.astype(np.int64), np.minimum(n_in - 1, np.ceil(s)).astype(np.int64), s - lo
def nearest(x, dy, oh, ow, align, half):
    r, q = src(x.shape[1], oh, align, half), src(x.shape[2], ow, align, half)
    dx = np.zeros_like(x)
    np.add.at(dx, (slice(None), r[:, None], q[None, :]), dy)
    return x[:, r][:, :, q], dx
def bilinear(x, dy, oh, ow, align, half):
    rl, rh, rf = taps(x.shape[1], oh, align, half)
    cl, ch, cf = taps(x.shape[2], ow, align, half)
    at = lambda r, c: x[:, r][:, :, c]
    cw = cf[None, None, :, None]
    top = at(rl, cl) + (at(rl, ch) - at(rl, cl)) * cw
    bottom = at(rh, cl) + (at(rh, ch) - at(rh, cl)) * cw
    y = top + (bottom - top) * rf[None, :, None, None]
    dx = np.zeros_like(x)
    for r, wr in ((rl, 1 - rf), (rh, rf)):
        for c, wc in ((cl, 1 - cf), (ch, cf)):
            np.add.at(dx, (slice(None), r[:, None], c[None, :]), dy * (wr[:, None] * wc[None, :])[None, :, :, None])
    return y, dx
out = []
for c in json.load(sys.stdin):
    b, h, w, d = c["x"]
    oh, ow = c["size"]
    x = np.array(c["xv"], np.float32).astype(np.float64).reshape(b, h, w, d)
    dy = np.array(c["dy"], np.float32).astype(np.float64).reshape(b, oh, ow, d)
    y, dx = (nearest if c["kind"] == "nearest" else bilinear)(x, dy, oh, ow, c["align"], c["half"])
    out.append({"y": y.astype(np.float32).ravel().tolist(), "dx": dx.ravel().tolist()})
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
        kind: c.kind,
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

/** Each case of `kind` on the active backend against numpy: the forward bit-equal, dx within TOL. */
async function checkAgainstNumpy(
  t: { diagnostic(m: string): void },
  kind: Kind,
  forwardTol = 0,
  dxTol = TOL,
): Promise<void> {
  let worst = 0;
  let worstY = 0;
  for (const [i, c] of CASES.entries()) {
    if (c.kind !== kind) continue;
    const { y, dx } = await run(c, inputs[i].x, inputs[i].dy);
    const ey = maxRelErr(y, refs[i].y);
    assert.ok(ey <= forwardTol, `forward ${label(c)}: the numpy rule is not the forward's (${ey})`);
    worstY = Math.max(worstY, ey);
    const e = maxRelErr(dx, refs[i].dx);
    assert.ok(e <= dxTol, `dx ${label(c)}: ${e}`);
    worst = Math.max(worst, e);
  }
  t.diagnostic(
    `${kind} on ${tf.getBackend()}: max rel. |Δ| forward ${worstY.toExponential(2)}, dx ${worst.toExponential(2)}`,
  );
}

/** dx of case i by a built-in kernel we replaced, on the active backend. */
function builtinDx(kernel: string, i: number): Float32Array {
  const builtin = originalKernels.get(`${tf.getBackend()}/${kernel}`);
  assert.ok(builtin, `the built-in ${kernel} was replaced on ${tf.getBackend()}`);
  const c = CASES[i];
  return tf.tidy(() => {
    const images = tf.tensor4d(inputs[i].x, c.x);
    const dy = tf.tensor4d(inputs[i].dy, [c.x[0], ...c.size, c.x[3]]);
    const out = builtin({
      inputs: { images, dy },
      backend: tf.backend(),
      attrs: { alignCorners: c.alignCorners, halfPixelCenters: c.halfPixelCenters, size: c.size },
    }) as tf.TensorInfo;
    // The cpu built-in labels bilinear dx [b, w, h, d]: its values are read in dx's order.
    return tf
      .engine()
      .makeTensorFromTensorInfo({ ...out, shape: c.x })
      .dataSync() as Float32Array;
  });
}

const FIXED =
  'the built-in now agrees with numpy: a tfjs upgrade fixed it; remove its replacement in kernels/cpu_fixes.ts';
/** The 2× downsample under half-pixel centres at batch 2: what the paper world's resizes do. */
const HALF_PIXEL_DOWN = CASES.findIndex(
  (c) => c.kind === 'bilinear' && c.x[0] === 2 && c.x[1] === 8 && c.halfPixelCenters,
);

await initBackend('cpu');

test('cpu ResizeNearestNeighborGrad matches numpy for batch 1–3 (forward checked first)', async (t) => {
  await checkAgainstNumpy(t, 'nearest');
});

test('cpu ResizeBilinearGrad matches numpy for batch 1–3, every alignCorners / halfPixelCenters', async (t) => {
  await checkAgainstNumpy(t, 'bilinear');
});

test('wasm: ResizeBilinearGrad matches numpy; ResizeNearestNeighborGrad matches cpu (halfPixelCenters off)', async (t) => {
  const nearest = CASES.map((c, i) => [c, i] as const).filter(([c]) => c.kind === 'nearest' && !c.halfPixelCenters);
  const cpu = await Promise.all(nearest.map(async ([c, i]) => (await run(c, inputs[i].x, inputs[i].dy)).dx));
  await initBackend('wasm');
  try {
    for (const [k, [c, i]] of nearest.entries()) {
      const e = maxRelErr(cpu[k], (await run(c, inputs[i].x, inputs[i].dy)).dx);
      assert.ok(e <= TOL, `cpu vs wasm ${label(c)}: ${e}`);
    }
    await checkAgainstNumpy(t, 'bilinear', WASM_FORWARD_TOL);
    assert.ok(maxRelErr(builtinDx('ResizeBilinearGrad', HALF_PIXEL_DOWN), refs[HALF_PIXEL_DOWN].dx) > 0.1, FIXED);
  } finally {
    await initBackend('cpu');
  }
});

test("tfjs 4.22's own cpu kernels are still wrong (the replacements are still needed)", () => {
  const i = CASES.findIndex((c) => c.kind === 'nearest' && c.x[0] === 2 && !c.alignCorners && !c.halfPixelCenters);
  assert.ok(maxRelErr(builtinDx('ResizeNearestNeighborGrad', i), refs[i].dx) > 1e-3, FIXED);
  assert.ok(maxRelErr(builtinDx('ResizeBilinearGrad', HALF_PIXEL_DOWN), refs[HALF_PIXEL_DOWN].dx) > 0.1, FIXED);
});

test('webgpu ResizeBilinearGrad (ours, kernels/webgpu_fixes.ts) matches numpy; the built-in does not', async (t) => {
  const { webgpuSkipReason } = await import('../../../test/helpers.js');
  const skip = await webgpuSkipReason();
  if (skip) return t.skip(skip);
  after(() => shutdownBackend());
  await checkAgainstNumpy(t, 'bilinear', WEBGPU_TOL, WEBGPU_TOL);
  const builtin = originalKernels.get('webgpu/ResizeBilinearGrad');
  assert.ok(builtin, 'the built-in was replaced on webgpu');
  const c = CASES[HALF_PIXEL_DOWN];
  const dx = tf.tidy(() => {
    const images = tf.tensor4d(inputs[HALF_PIXEL_DOWN].x, c.x);
    const dy = tf.tensor4d(inputs[HALF_PIXEL_DOWN].dy, [c.x[0], ...c.size, c.x[3]]);
    const out = builtin({
      inputs: { images, dy },
      backend: tf.backend(),
      attrs: { ...c, size: c.size },
    }) as tf.TensorInfo;
    return tf.engine().makeTensorFromTensorInfo(out);
  });
  assert.ok(maxRelErr((await dx.data()) as Float32Array, refs[HALF_PIXEL_DOWN].dx) > 0.1, FIXED);
  dx.dispose();
});
