/**
 * Registers our replacement kernels on a backend, tfjs-style: {kernelName, backendName, kernelFunc}.
 * Idempotent: a second call for the same backend does nothing.
 */
import {
  getKernel,
  registerKernel,
  unregisterKernel,
  type KernelFunc,
  type KernelSetupFunc,
} from '@tensorflow/tfjs-core';
import { makeBatchMatMul } from './batch_matmul.js';
import { makeConv2DBackpropFilter } from './conv2d_backprop_filter.js';
import { makeConv2DBackpropInput } from './conv2d_backprop_input.js';
import { delegateKernel } from './delegate.js';
import { registerGroupNorm } from './group_norm.js';

const done = new Set<string>();

/** Built-in kernels we replaced, kept so benchmarks can compare against them. */
export const originalKernels = new Map<string, KernelFunc>();

export function put(kernelName: string, backendName: string, kernelFunc: KernelFunc): void {
  // Replacing a built-in is deliberate: unregister first so tfjs does not warn on every start.
  const old = getKernel(kernelName, backendName);
  let setupFunc: KernelSetupFunc | undefined;
  if (old != null) {
    originalKernels.set(`${backendName}/${kernelName}`, old.kernelFunc);
    // Keep the built-in's setup: a replacement may still call the original kernel, which needs it.
    setupFunc = old.setupFunc;
    unregisterKernel(kernelName, backendName);
  }
  registerKernel({ kernelName, backendName, kernelFunc, setupFunc });
}

/**
 * The kernels that training needs and that the wasm backend lacks (or has only as a slow loop, or
 * wrong), and our fused GroupNorm.
 */
export function registerReplacementKernels(backendName = 'wasm'): void {
  if (done.has(backendName)) return;
  done.add(backendName);
  const toCpu = (name: string) => delegateKernel(name, 'cpu');
  put('Conv2DBackpropFilter', backendName, makeConv2DBackpropFilter(backendName, toCpu('Conv2DBackpropFilter')));
  put('Conv2DBackpropInput', backendName, makeConv2DBackpropInput(backendName, toCpu('Conv2DBackpropInput')));
  put('DepthwiseConv2dNativeBackpropFilter', backendName, toCpu('DepthwiseConv2dNativeBackpropFilter'));
  put('DepthwiseConv2dNativeBackpropInput', backendName, toCpu('DepthwiseConv2dNativeBackpropInput'));
  put('UnsortedSegmentSum', backendName, toCpu('UnsortedSegmentSum'));
  // tfjs-backend-wasm 4.22's MaxPoolGrad routes the gradient to the wrong inputs (every window and
  // stride tried: 1×1/2, 2×2/2, 3×3/2; the cpu backend agrees with finite differences).
  put('MaxPoolGrad', backendName, toCpu('MaxPoolGrad'));
  const matmul = getKernel('BatchMatMul', backendName);
  if (matmul) put('BatchMatMul', backendName, makeBatchMatMul(matmul.kernelFunc));
  // Not a replacement: a fused kernel of our own, used by nn/layers when the backend has it.
  registerGroupNorm(backendName);
}
