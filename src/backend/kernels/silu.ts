/**
 * SiLU x·σ(x) as one webgpu kernel, and its derivative dy·σ(x)·(1 + x·(1 − σ(x))) as another
 * (issue #32): the ops path (nn/layers silu) is 2 dispatches forward (Sigmoid, Multiply) and 5
 * backward. For the SiLU after a linear layer or conv (time embeddings, feed-forwards): tfjs's
 * fused conv/matmul activations have no SiLU, so the bias goes into the conv/matmul and this
 * kernel follows. σ is computed as tfjs's webgpu Sigmoid computes it, 1/(1 + exp(−x)).
 */
import { getKernel, type GradConfig, type KernelFunc, type Tensor, type TensorInfo } from '@tensorflow/tfjs-core';
// Types only: importing the package registers its backend, which must wait until navigator.gpu exists.
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { firstDy, registerCustomKernels, runCustomKernel } from './custom_kernel.js';

const SILU = 'SddSilu';
const SILU_GRAD = 'SddSiluGrad';
const WG = 64;

const BODIES = {
  forward: { inputs: ['X'], expr: 'x * (1.0 / (1.0 + exp(-x)))' },
  backward: { inputs: ['X', 'Dy'], expr: 'Dy[index] * s * (1.0 + x * (1.0 - s))' },
} as const;

/** One thread per element; the output has x's shape. */
class SiluProgram {
  readonly variableNames: string[];
  readonly size = true;
  readonly workgroupSize: [number, number, number] = [WG, 1, 1];
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];
  readonly shaderKey: string;

  constructor(
    private readonly kind: keyof typeof BODIES,
    readonly outputShape: number[],
  ) {
    this.variableNames = [...BODIES[kind].inputs];
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    // Flat dispatches over 65535 workgroups are folded into y by tfjs (getGlobalIndex follows).
    this.dispatch = [Math.ceil(outputShape.reduce((a, b) => a * b, 1) / WG), 1, 1];
    this.shaderKey = `sdd_silu_${kind}`;
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let x = X[index];
          let s = 1.0 / (1.0 + exp(-x));
          result[index] = ${BODIES[this.kind].expr};
        }
      }`;
  }
}

function kernel(kind: keyof typeof BODIES): KernelFunc {
  return ({ inputs, backend }) => {
    const { x, dy } = inputs as Record<'x' | 'dy', TensorInfo>;
    const xs = kind === 'forward' ? [x] : [x, dy];
    // Registered on webgpu only: the backend is tfjs-backend-webgpu's.
    const gpu = backend as unknown as WebGPUBackend;
    return gpu.runWebGPUProgram(new SiluProgram(kind, x.shape) as never, xs, 'float32');
  };
}

const gradient: GradConfig = {
  kernelName: SILU,
  inputsToSave: ['x'],
  gradFunc: (dy, [x]) => ({ x: () => runCustomKernel(SILU_GRAD, { x, dy: firstDy(dy) }, {})[0] }),
};

/** Registers both kernels on webgpu, and the gradient once. */
export function registerSilu(backendName = 'webgpu'): void {
  if (getKernel(SILU, backendName)) return;
  registerCustomKernels(backendName, { [SILU]: kernel('forward'), [SILU_GRAD]: kernel('backward') }, gradient);
}

/** x·σ(x) through the fused kernel (float32). */
export function siluFused(x: Tensor): Tensor {
  return runCustomKernel(SILU, { x }, {})[0];
}
