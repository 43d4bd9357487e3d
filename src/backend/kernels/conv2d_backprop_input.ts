/**
 * Conv2DBackpropInput from forward Conv2Ds (XNNPACK's). wasm ships a Conv2DBackpropInput, but it
 * is a naive loop several times slower than the forward conv (bench/kernels measures the ratio).
 *
 * Stride 1: one stride-1 convolution of dy with the spatially flipped, in/out-transposed filter.
 * Stride s > 1: the same convolution of the zero-dilated dy would spend (s² − 1)/s² of its work on
 * zeros, so it is split by output phase instead (sub-pixel convolution): the rows i of dx with
 * (i + pad) mod s = r receive only the taps r, r + s, r + 2s, … of the filter, and form a stride-1
 * convolution of the undilated dy with that sub-filter. s² small convs with the forward conv's
 * total work, then one pass that interleaves them into dx.
 */
import { type backend_util, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { KernelScope } from './kernel_util.js';
import type { HeapBackend } from './batch_matmul.js';
import { decodeInputCall } from './conv2d_backprop_call.js';

export function makeConv2DBackpropInput(backendName: string, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const call = decodeInputCall(args, backendName);
    if (!call) return fallback(args);
    const { inputs, info, scope } = call;
    if (info.strideHeight === 1 && info.strideWidth === 1)
      return conv2dBackpropInputNHWC(scope, inputs.dy, inputs.filter, info);
    return conv2dBackpropInputPhases(scope, inputs.dy, inputs.filter, info);
  };
}

/** dx of one call: the stride-1 convolution, or the per-phase one for larger strides (header). */
type Strategy = (s: KernelScope, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo) => TensorInfo;

/** Inserts stride−1 zeros after every element along H and W (trailing zeros included). */
function dilate(s: KernelScope, dy: TensorInfo, sh: number, sw: number): TensorInfo {
  if (sh === 1 && sw === 1) return dy;
  const [b, oh, ow, c] = dy.shape;
  const r = s.reshape(dy, [b, oh, 1, ow, 1, c]);
  const p = s.run(
    'PadV2',
    { x: r },
    {
      paddings: [
        [0, 0],
        [0, 0],
        [0, sh - 1],
        [0, 0],
        [0, sw - 1],
        [0, 0],
      ],
      constantValue: 0,
    },
  );
  return s.reshape(p, [b, oh * sh, ow * sw, c]);
}

const conv2dBackpropInputNHWC: Strategy = (s, dy, filter, info) => {
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const { outHeight: oh, outWidth: ow, inHeight: H, inWidth: W, padInfo } = info;
  const d = dilate(s, dy, sh, sw); // length o·s: (o−1)·s+1 real rows plus s−1 trailing zeros
  // dx[i] = Σ_k d[i + top − k]·w[k]: pad the front by k−1−top, and the back so that exactly H
  // outputs remain after a VALID conv (negative amounts trim).
  const flipped = s.run('Reverse', { x: filter }, { dims: [0, 1] });
  const wT = s.transpose(flipped, [0, 1, 3, 2]); // [kh, kw, co, ci]
  const dx = s.convPadded(
    d,
    wT,
    [
      [kh - 1 - padInfo.top, H + padInfo.top - oh * sh],
      [kw - 1 - padInfo.left, W + padInfo.left - ow * sw],
    ],
    [1, 1],
  );
  return s.dispose(dx);
};

/** Along one axis, phase r of a stride-s backprop: its taps and the dx rows it writes. */
interface Phase {
  r: number;
  /** Taps r, r + s, …: how many (0: this phase receives nothing). */
  taps: number;
  /** dx row i = q·s + r − pad for q = qMin … qMax. */
  qMin: number;
  qMax: number;
}

function phases(s: number, k: number, pad: number, inSize: number): Phase[] {
  return Array.from({ length: s }, (_, r) => ({
    r,
    taps: Math.max(0, Math.ceil((k - r) / s)),
    qMin: Math.ceil((pad - r) / s),
    qMax: Math.floor((inSize - 1 + pad - r) / s),
  }));
}

/** A phase pair's stride-1 convolution: dx rows (ph) × columns (pw) of that phase, packed. */
interface PhaseOutput {
  ph: Phase;
  pw: Phase;
  out: TensorInfo;
}

const conv2dBackpropInputPhases: Strategy = (s, dy, filter, info) => {
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const { inHeight: H, inWidth: W, padInfo } = info;
  const parts: PhaseOutput[] = [];
  for (const ph of phases(sh, kh, padInfo.top, H)) {
    for (const pw of phases(sw, kw, padInfo.left, W)) {
      if (ph.taps === 0 || pw.taps === 0 || ph.qMax < ph.qMin || pw.qMax < pw.qMin) continue;
      parts.push({ ph, pw, out: phaseConv(s, dy, filter, info, ph, pw) });
    }
  }
  return interleave(s, dy, filter.shape[2], info, parts);
};

/** The stride-1 convolution of dy with the sub-filter of taps (ph.r, pw.r) + multiples of the stride. */
function phaseConv(
  s: KernelScope,
  dy: TensorInfo,
  filter: TensorInfo,
  info: backend_util.Conv2DInfo,
  ph: Phase,
  pw: Phase,
): TensorInfo {
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, outHeight: oh, outWidth: ow } = info;
  const [ci, co] = [filter.shape[2], filter.shape[3]];
  // dx_r[q] = Σ_j dy[q − j]·w[r + j·s]: a correlation of dy with the flipped sub-filter.
  const sub = s.run(
    'StridedSlice',
    { x: filter },
    {
      begin: [ph.r, pw.r, 0, 0],
      end: [kh, kw, ci, co],
      strides: [sh, sw, 1, 1],
      beginMask: 0,
      endMask: 0,
      ellipsisMask: 0,
      newAxisMask: 0,
      shrinkAxisMask: 0,
    },
  );
  const wT = s.transpose(s.run('Reverse', { x: sub }, { dims: [0, 1] }), [0, 1, 3, 2]); // [th, tw, co, ci]
  // Outputs q = qMin … qMax need dy rows qMin − taps + 1 … qMax: grow or trim dy to that.
  return s.convPadded(
    dy,
    wT,
    [
      [ph.taps - 1 - ph.qMin, ph.qMax - (oh - 1)],
      [pw.taps - 1 - pw.qMin, pw.qMax - (ow - 1)],
    ],
    [1, 1],
  ); // [b, qMax − qMin + 1 (h), … (w), ci]
}

/** Writes every phase's rows and columns to their places in a fresh dx [b, H, W, ci]. */
function interleave(
  s: KernelScope,
  dy: TensorInfo,
  ci: number,
  info: backend_util.Conv2DInfo,
  parts: PhaseOutput[],
): TensorInfo {
  const { strideHeight: sh, strideWidth: sw, inHeight: H, inWidth: W, padInfo } = info;
  const heap = s.backend as HeapBackend;
  const dx = heap.makeOutput([dy.shape[0], H, W, ci], 'float32');
  // Views only now: every allocation above may have grown (and detached) the wasm memory.
  const dst = heap.typedArrayFromHeap(dx);
  dst.fill(0); // rows no phase reaches (a filter narrower than its stride) get no gradient
  for (const { ph, pw, out } of parts) {
    const src = heap.typedArrayFromHeap(out);
    const nh = ph.qMax - ph.qMin + 1;
    const nw = pw.qMax - pw.qMin + 1;
    for (let b = 0; b < dy.shape[0]; b++) {
      for (let y = 0; y < nh; y++) {
        const i = (ph.qMin + y) * sh + ph.r - padInfo.top;
        for (let x = 0; x < nw; x++) {
          const j = (pw.qMin + x) * sw + pw.r - padInfo.left;
          const from = ((b * nh + y) * nw + x) * ci;
          dst.set(src.subarray(from, from + ci), ((b * H + i) * W + j) * ci);
        }
      }
    }
  }
  s.dispose(dx);
  return dx;
}
