/**
 * Conv2DBackpropFilter for backends that lack it (wasm), written as one forward Conv2D.
 *
 * dW[kh,kw,ci,co] = Σ_{b,oy,ox} x[b, oy·s+kh−pad, ox·s+kw−pad, ci] · dy[b,oy,ox,co]
 * is a correlation of x (channels as batch, batch as channels) with dy used as a filter whose taps
 * are `stride` apart: a stride-1 Conv2D with dilation = stride. The forward Conv2D of wasm is
 * XNNPACK's, so this runs at forward-convolution speed.
 */
import { type backend_util, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { KernelScope } from './kernel_util.js';
import { decodeFilterCall } from './conv2d_backprop_call.js';

export function makeConv2DBackpropFilter(backendName: string, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const call = decodeFilterCall(args, backendName);
    if (!call) return fallback(args);
    return conv2dBackpropFilterNHWC(call.scope, call.inputs.x, call.inputs.dy, call.info);
  };
}

function conv2dBackpropFilterNHWC(
  s: KernelScope,
  x: TensorInfo,
  dy: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo {
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const { outHeight: oh, outWidth: ow, inHeight: H, inWidth: W, padInfo } = info;
  const xT = s.transpose(x, [3, 1, 2, 0]); // [ci, H, W, b]
  // The correlation touches padded positions 0 .. (o−1)·s + k − 1 only: pad up to there, or trim
  // rows the forward conv never read (VALID padding with a remainder).
  const needH = (oh - 1) * sh + kh;
  const needW = (ow - 1) * sw + kw;
  const dyT = s.transpose(dy, [1, 2, 0, 3]); // [oh, ow, b, co] used as a filter
  const out = s.convPadded(
    xT,
    dyT,
    [
      [padInfo.top, needH - H - padInfo.top],
      [padInfo.left, needW - W - padInfo.left],
    ],
    [sh, sw],
  ); // [ci, kh, kw, co]
  const dW = s.transpose(out, [1, 2, 0, 3]);
  return s.dispose(dW);
}
