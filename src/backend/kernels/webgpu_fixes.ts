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
 */
import { getKernel, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
// Types only: importing the package registers its backend, which must wait until navigator.gpu exists.
import type { WebGPUBackend, webgpu_util as WebGpuUtil } from '@tensorflow/tfjs-backend-webgpu';
import { put } from './register.js';

/** out[i] = f32(A[i]): the storage type of A (i32 for int32 and bool) comes from the backend. */
class ToFloatProgram {
  readonly variableNames = ['A'];
  readonly size = true;
  readonly workgroupSize: [number, number, number] = [128, 1, 1];
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];
  readonly shaderKey = 'sdd_to_f32';

  constructor(
    readonly outputShape: number[],
    util: typeof WebGpuUtil,
  ) {
    this.dispatchLayout = util.flatDispatchLayout(outputShape);
    this.dispatch = util.computeDispatch(this.dispatchLayout, outputShape, this.workgroupSize) as [
      number,
      number,
      number,
    ];
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
    // Registered for the webgpu backend only, so the backend is tfjs-backend-webgpu's (its class is not in the kernel's types).
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
}

/** Inputs per AddN program: 7 inputs + 1 output stay within the default limit of 8 bindings. */
const ADDN_CHUNK = 7;

function fixAddN(): void {
  const builtin = getKernel('AddN', 'webgpu');
  if (!builtin) return;
  const original = builtin.kernelFunc;
  const addN: KernelFunc = (args) => {
    // Registered for the webgpu backend only, so the backend is tfjs-backend-webgpu's (its class is not in the kernel's types).
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
