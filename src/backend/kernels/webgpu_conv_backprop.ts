/**
 * Our Conv2DBackpropFilter and Conv2DBackpropInput for webgpu (issue #32): tiled implicit GEMMs
 * (webgpu_conv_filter.ts, webgpu_conv_input.ts) in place of tfjs-backend-webgpu 4.22's naive
 * programs, which made the bench U-Net train step 37–54× PyTorch. NHWC float32 only; NCHW (and
 * anything a program cannot dispatch) goes to tfjs's kernel. They are registered before the batch
 * split (webgpu_batch_split.ts, installed with the pool), which then wraps them as it wrapped
 * tfjs's: a call whose bindings exceed the device's limit runs in batch chunks of ours.
 *
 * SDD_WEBGPU_CONV_BACKPROP=tfjs (or setConvBackprop('tfjs')) sends every call to tfjs's kernels,
 * for before/after benches.
 */
import { getKernel, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
// Types only: importing the package registers its backend, which must wait until navigator.gpu exists.
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { decodeFilterCall, decodeInputCall, type BackpropCall } from './conv2d_backprop_call.js';
import { put } from './register.js';
import { FilterGemmProgram, filterGemm, SplitSumProgram } from './webgpu_conv_filter.js';
import { InputGemmProgram } from './webgpu_conv_input.js';
import { bindingLimit } from '../webgpu_internals.js';

export type ConvBackpropKernels = 'ours' | 'tfjs';

let which: ConvBackpropKernels = process.env.SDD_WEBGPU_CONV_BACKPROP === 'tfjs' ? 'tfjs' : 'ours';

/** Which kernels the webgpu conv backprops run from now on (bench/webgpu_counts.ts compares both). */
export function setConvBackprop(k: ConvBackpropKernels): void {
  which = k;
}

/** Registered on webgpu only: the backend a kernel function receives is tfjs-backend-webgpu's. */
type Gpu = WebGPUBackend & {
  device: { limits: { maxStorageBufferBindingSize: number; maxComputeWorkgroupsPerDimension: number } };
};

/** Whether the program's workgroup grid fits the device (else tfjs's kernel runs). */
function fits(gpu: Gpu, program: { dispatch: number[] }): boolean {
  return program.dispatch.every((d) => d <= gpu.device.limits.maxComputeWorkgroupsPerDimension);
}

/**
 * Our kernel over `original`: the call decoded (NHWC only), then `run` on the webgpu backend, which
 * returns null where its program does not apply; tfjs's kernel runs in every case we do not take.
 */
function ours<C extends BackpropCall<unknown>>(
  original: KernelFunc,
  decode: (args: Parameters<KernelFunc>[0], backendName: string) => C | null,
  run: (call: C, gpu: Gpu) => TensorInfo | null,
): KernelFunc {
  return (args) => {
    const call = which === 'tfjs' ? null : decode(args, 'webgpu');
    return (call && run(call, args.backend as unknown as Gpu)) ?? original(args);
  };
}

const filterKernel = (original: KernelFunc) =>
  ours(original, decodeFilterCall, ({ inputs, info }, gpu) => {
    if (inputs.x.dtype !== 'float32') return null;
    const g = filterGemm(info, bindingLimit(gpu.device));
    const program = new FilterGemmProgram(g, info);
    if (g.k === 0 || !fits(gpu, program)) return null;
    const out = gpu.runWebGPUProgram(program as never, [inputs.x, inputs.dy], 'float32');
    if (g.splits === 1) return out;
    const dW = gpu.runWebGPUProgram(new SplitSumProgram(info.filterShape, g.splits) as never, [out], 'float32');
    gpu.disposeData(out.dataId);
    return dW;
  });

const inputKernel = (original: KernelFunc) =>
  ours(original, decodeInputCall, ({ inputs, info }, gpu) => {
    if (inputs.dy.dtype !== 'float32') return null;
    const program = new InputGemmProgram(info);
    if (!fits(gpu, program)) return null;
    return gpu.runWebGPUProgram(program as never, [inputs.dy, inputs.filter], 'float32');
  });

/** Marks our kernels, so that a second registration (a backend restart) does not wrap them again. */
const OURS = Symbol('sddConvBackprop');

/**
 * Puts our kernels over tfjs's Conv2DBackpropFilter/Input on webgpu (call once the backend is
 * active, before the batch split is installed). Idempotent.
 */
export function registerConvBackprop(backendName = 'webgpu'): void {
  for (const [name, make] of [
    ['Conv2DBackpropFilter', filterKernel],
    ['Conv2DBackpropInput', inputKernel],
  ] as const) {
    const k = getKernel(name, backendName);
    if (!k || (k.kernelFunc as { [OURS]?: boolean })[OURS]) continue;
    // Below a batch split (a re-registration after the split was installed) is not ours to wrap.
    if ((k.kernelFunc as { sddSplit?: boolean }).sddSplit) continue;
    const ours = make(k.kernelFunc);
    (ours as { [OURS]?: boolean })[OURS] = true;
    put(name, backendName, ours);
  }
}
