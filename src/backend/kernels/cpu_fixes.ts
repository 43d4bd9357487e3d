/**
 * Fixes for tfjs-backend-cpu 4.22 kernels, registered over the built-ins.
 *
 * ResizeNearestNeighborGrad. The built-in reads dy at `b · imagesStrides[0] + …`, the batch
 * stride of the input images, not of dy: for batch > 1 every image after the first reads the
 * wrong part of dy (or past its end, giving undefined → NaN), so gradients through upsample2x
 * (src/nn/layers.ts) were wrong on SDD_BACKEND=cpu. Here dx is the exact adjoint of the cpu
 * forward: each dy pixel is added to the input pixel the forward copied it from, by the forward's
 * own index rule (alignCorners, halfPixelCenters included). One pass over dy, O(dy).
 *
 * ResizeBilinearGrad, on cpu and wasm: both built-ins ignore halfPixelCenters
 * (kernels/resize_bilinear_grad.ts).
 */
import { getKernel, util, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
// Types only: the cpu backend package is imported by the BackendDefs that start it.
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { put } from './register.js';
import { hostResizeBilinearGrad } from './resize_bilinear_grad.js';
import { kernelAttrs } from './custom_kernel.js';

interface ResizeAttrs {
  alignCorners: boolean;
  halfPixelCenters?: boolean;
}

/** Source index of each output index along one axis, as the cpu ResizeNearestNeighbor computes it. */
function nearestSources(inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean): Int32Array {
  const effIn = alignCorners && outSize > 1 ? inSize - 1 : inSize;
  const effOut = alignCorners && outSize > 1 ? outSize - 1 : outSize;
  const ratio = effIn / effOut;
  const src = new Int32Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const frac = halfPixelCenters ? ratio * (o + 0.5) : ratio * o;
    let s = Math.min(inSize - 1, alignCorners ? Math.round(frac) : Math.floor(frac));
    if (halfPixelCenters) s = Math.max(0, s);
    src[o] = s;
  }
  return src;
}

const resizeNearestNeighborGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const { images, dy } = inputs as { images: TensorInfo; dy: TensorInfo };
  const { alignCorners, halfPixelCenters = false } = kernelAttrs<ResizeAttrs>(attrs);
  // Registered for the cpu backend only (its data store is not in the kernel's types).
  const cpu = backend as unknown as MathBackendCPU;
  const [batch, xh, xw, depth] = images.shape;
  const [, yh, yw] = dy.shape;
  const dyValues = cpu.data.get(dy.dataId).values as Float32Array;
  const xs = util.computeStrides(images.shape);
  const ys = util.computeStrides(dy.shape);
  const rows = nearestSources(xh, yh, alignCorners, halfPixelCenters);
  const cols = nearestSources(xw, yw, alignCorners, halfPixelCenters);
  const out = new Float32Array(batch * xh * xw * depth);
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < yh; r++) {
      const outRow = b * xs[0] + rows[r] * xs[1];
      const dyRow = b * ys[0] + r * ys[1];
      for (let c = 0; c < yw; c++) {
        const o = outRow + cols[c] * xs[2];
        const i = dyRow + c * ys[2];
        for (let d = 0; d < depth; d++) out[o + d] += dyValues[i + d];
      }
    }
  }
  return cpu.makeTensorInfo(images.shape, images.dtype, out);
};

const registered = new Set<string>();

/**
 * Call once the cpu backend's package is imported (its built-in kernels registered); the wasm
 * backend's fixes are registered too where its package is imported by then (wasm.ts calls this
 * after importing it). Idempotent per backend.
 */
export function registerCpuKernelFixes(): void {
  if (!registered.has('cpu')) {
    registered.add('cpu');
    put('ResizeNearestNeighborGrad', 'cpu', resizeNearestNeighborGrad);
    put('ResizeBilinearGrad', 'cpu', hostResizeBilinearGrad);
  }
  if (!registered.has('wasm') && getKernel('ResizeBilinearGrad', 'wasm')) {
    registered.add('wasm');
    put('ResizeBilinearGrad', 'wasm', hostResizeBilinearGrad);
  }
}
