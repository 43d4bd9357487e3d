/**
 * Conv2DBackpropInput as one forward Conv2D: the gradient w.r.t. the input of a strided conv is a
 * stride-1 convolution of the zero-dilated dy with the spatially flipped, in/out-transposed filter.
 * wasm ships a Conv2DBackpropInput, but it is a naive loop several times slower than XNNPACK's
 * forward conv (bench/kernels measures the ratio).
 */
import {
  backend_util,
  type Conv2DBackpropInputAttrs,
  type Conv2DBackpropInputInputs,
  type KernelBackend,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { KernelScope } from './kernel_util.js';

export function makeConv2DBackpropInput(backendName: string, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { dy, filter } = args.inputs as unknown as Required<{ [K in keyof Conv2DBackpropInputInputs]: TensorInfo }>;
    const attrs = args.attrs as unknown as Conv2DBackpropInputAttrs;
    if (attrs.dataFormat === 'NCHW') return fallback(args);
    const info = backend_util.computeConv2DInfo(
      attrs.inputShape,
      filter.shape as [number, number, number, number],
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    return conv2dBackpropInputNHWC(new KernelScope(args.backend as KernelBackend, backendName), dy, filter, info);
  };
}

/** Inserts stride−1 zeros after every element along H and W (trailing zeros included). */
function dilate(s: KernelScope, dy: TensorInfo, sh: number, sw: number): TensorInfo {
  if (sh === 1 && sw === 1) return dy;
  const [b, oh, ow, c] = dy.shape;
  const r = s.reshape(dy, [b, oh, 1, ow, 1, c]);
  const p = s.run('PadV2', { x: r }, {
    paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]],
    constantValue: 0,
  });
  return s.reshape(p, [b, oh * sh, ow * sw, c]);
}

function conv2dBackpropInputNHWC(
  s: KernelScope,
  dy: TensorInfo,
  filter: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo {
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
}
