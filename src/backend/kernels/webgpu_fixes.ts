/**
 * Fixes for tfjs-backend-webgpu 4.22 kernels that fail on Dawn, registered over the built-ins.
 *
 * Cast. Casting int32 or bool to float32 is, there, a relabel
 * of the same buffer (no "encoding loss"), so the tensor says float32 while its storage stays i32.
 * Programs that copy their input straight to the output then fail to compile: Transpose, inside
 * Sum/Max over a non-inner axis, gives "type mismatch … expected 'f32', got 'i32'" (seen in the
 * CLIP text mask: tf.cast(tf.greater(ids, 0), 'float32'), then tf.sum over axis 1). Here the cast
 * converts for real, in a one-line WGSL program; every other cast goes to the built-in kernel.
 *
 * AddN. One program binds all n inputs as storage buffers; with n + 1 above the device's
 * maxStorageBuffersPerShaderStage (8 unless requested higher) the pipeline is invalid. Gradients
 * of a tensor used many times (a weight shared by 9 layers) sum that many. Here sums of more than
 * 7 inputs are done in chunks of 7.
 *
 * ResizeBilinearGrad. tfjs-backend-webgpu 4.22's ignores halfPixelCenters, as the cpu and wasm
 * built-ins do (kernels/resize_bilinear_grad.ts): every resize of ours uses half-pixel centres.
 * Here each dx pixel gathers from the dy pixels whose forward taps read it, with the webgpu
 * forward's own float32 arithmetic (its tap indices and weights).
 */
import { getKernel, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
// Types only: importing the package registers its backend, which must wait until navigator.gpu exists.
import type { WebGPUBackend, webgpu_util as WebGpuUtil } from '@tensorflow/tfjs-backend-webgpu';
import { put } from './register.js';

/** A program over every element of its output, one invocation each (tfjs's flat dispatch). */
abstract class FlatProgram {
  readonly size = true;
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];
  abstract readonly variableNames: string[];
  abstract readonly shaderKey: string;

  constructor(
    readonly outputShape: number[],
    util: typeof WebGpuUtil,
    readonly workgroupSize: [number, number, number],
  ) {
    this.dispatchLayout = util.flatDispatchLayout(outputShape);
    this.dispatch = util.computeDispatch(this.dispatchLayout, outputShape, workgroupSize) as [number, number, number];
  }

  abstract getUserCode(): string;
}

/** out[i] = f32(A[i]): the storage type of A (i32 for int32 and bool) comes from the backend. */
class ToFloatProgram extends FlatProgram {
  readonly variableNames = ['A'];
  readonly shaderKey = 'sdd_to_f32';

  constructor(outputShape: number[], util: typeof WebGpuUtil) {
    super(outputShape, util, [128, 1, 1]);
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          setOutputAtIndex(index, f32(getAByOutputIndex(index)));
        }
      }`;
  }
}

/** Call after the webgpu backend started (its package is imported by then). */
export async function registerWebGpuKernels(): Promise<void> {
  const { webgpu_util } = await import('@tensorflow/tfjs-backend-webgpu');
  const builtin = getKernel('Cast', 'webgpu');
  if (!builtin || (builtin.kernelFunc as { sddFixed?: boolean }).sddFixed) return;
  const original = builtin.kernelFunc;
  const cast: KernelFunc = (args) => {
    const x = args.inputs.x as TensorInfo;
    // Registered for the webgpu backend only, so the backend is tfjs-backend-webgpu's
    // (its class is not in the kernel's types).
    const backend = args.backend as unknown as WebGPUBackend;
    const to = (args.attrs as { dtype: string }).dtype;
    if (to === 'float32' && (x.dtype === 'int32' || x.dtype === 'bool')) {
      // Small tensors still on the host (tfjs's CPU forwarding) convert there, on the GPU otherwise.
      if (backend.shouldExecuteOnCPU([x])) {
        const values = backend.tensorMap.get(x.dataId).values as ArrayLike<number>;
        return backend.makeTensorInfo(x.shape, 'float32', Float32Array.from(values));
      }
      return backend.runWebGPUProgram(new ToFloatProgram(x.shape, webgpu_util) as never, [x], 'float32');
    }
    return original(args);
  };
  (cast as { sddFixed?: boolean }).sddFixed = true;
  put('Cast', 'webgpu', cast);
  fixAddN();
  put('ResizeBilinearGrad', 'webgpu', resizeBilinearGrad(webgpu_util));
}

/** Inputs per AddN program: 7 inputs + 1 output stay within the default limit of 8 bindings. */
const ADDN_CHUNK = 7;

function fixAddN(): void {
  const builtin = getKernel('AddN', 'webgpu');
  if (!builtin) return;
  const original = builtin.kernelFunc;
  const addN: KernelFunc = (args) => {
    // Registered for the webgpu backend only, so the backend is tfjs-backend-webgpu's
    // (its class is not in the kernel's types).
    const backend = args.backend as unknown as WebGPUBackend;
    // AddN's inputs are an array (tfjs passes the tensor list as the input map).
    let xs = Object.values(args.inputs) as TensorInfo[];
    const temps: TensorInfo[] = [];
    while (xs.length > ADDN_CHUNK) {
      const next: TensorInfo[] = [];
      for (let i = 0; i < xs.length; i += ADDN_CHUNK) {
        const chunk = xs.slice(i, i + ADDN_CHUNK);
        if (chunk.length === 1) next.push(chunk[0]);
        else {
          const part = original({ ...args, inputs: chunk as never }) as TensorInfo;
          temps.push(part);
          next.push(part);
        }
      }
      xs = next;
    }
    const out = original({ ...args, inputs: xs as never }) as TensorInfo;
    for (const t of temps) backend.disposeData(t.dataId);
    return out;
  };
  put('AddN', 'webgpu', addN);
}

/**
 * dx[b, r, c, d] = Σ over dy pixels (o, q) of dy[b, o, q, d] · wRow(o → r) · wCol(q → c), where
 * w(o → p) is the weight the forward gave input index p at output index o: its taps lo = ⌊src⌋
 * (truncated, as the forward's i32 cast), hi = min(⌈src⌉, n − 1), src = (o + h)·ratio − h. Only the
 * dy indices with src within a pixel of p (and one more each side, for rounding) are visited.
 */
class BilinearGradProgram extends FlatProgram {
  readonly variableNames = ['dy'];
  readonly uniforms = 'adjustRC : vec2<f32>, halfPixel : f32,';
  readonly shaderKey = 'sdd_resize_bilinear_grad';

  constructor(outputShape: number[], util: typeof WebGpuUtil) {
    super(outputShape, util, [64, 1, 1]);
  }

  getUserCode(): string {
    return `
      fn tapWeight(o : i32, p : i32, ratio : f32, inSize : i32) -> f32 {
        let src = (f32(o) + uniforms.halfPixel) * ratio - uniforms.halfPixel;
        let lo = i32(src);
        let hi = i32(min(f32(inSize - 1), ceil(src)));
        let frac = src - f32(lo);
        var w = 0.0;
        if (p == lo) { w = w + 1.0 - frac; }
        if (p == hi) { w = w + frac; }
        return w;
      }

      fn main(index : i32) {
        if (index < uniforms.size) {
          let coords = getCoordsFromIndex(index);
          let rc = coords.yz;
          let ratio = (vec2<f32>(uniforms.outShape.yz) - uniforms.adjustRC) /
            (vec2<f32>(uniforms.dyShape.yz) - uniforms.adjustRC);
          let h = vec2<f32>(uniforms.halfPixel);
          let first = max(vec2<i32>(0), vec2<i32>(floor((vec2<f32>(rc) - 1.0 + h) / ratio - h)) - 1);
          let last = min(uniforms.dyShape.yz - 1, vec2<i32>(ceil((vec2<f32>(rc) + 1.0 + h) / ratio - h)) + 1);
          var acc = 0.0;
          for (var o = first.x; o <= last.x; o++) {
            let wr = tapWeight(o, rc.x, ratio.x, uniforms.outShape.y);
            if (wr == 0.0) { continue; }
            for (var q = first.y; q <= last.y; q++) {
              let wc = tapWeight(q, rc.y, ratio.y, uniforms.outShape.z);
              if (wc != 0.0) { acc = acc + getDy(coords.x, o, q, coords.w) * wr * wc; }
            }
          }
          setOutputAtIndex(index, acc);
        }
      }`;
  }
}

function resizeBilinearGrad(util: typeof WebGpuUtil): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { images, dy } = inputs as { images: TensorInfo; dy: TensorInfo };
    const { alignCorners, halfPixelCenters } = attrs as { alignCorners: boolean; halfPixelCenters?: boolean };
    // The uniforms as the webgpu ResizeBilinear forward sets them.
    const adjust = [alignCorners && dy.shape[1] > 1 ? 1 : 0, alignCorners && dy.shape[2] > 1 ? 1 : 0];
    const uniforms = [
      { type: 'float32', data: adjust },
      { type: 'float32', data: [halfPixelCenters ? 0.5 : 0] },
    ];
    // Registered for the webgpu backend only (its class is not in the kernel's types).
    const gpu = backend as unknown as WebGPUBackend;
    return gpu.runWebGPUProgram(new BilinearGradProgram(images.shape, util) as never, [dy], 'float32', uniforms);
  };
}
