/**
 * One Adam/AdamW step per variable on webgpu in three dispatches (issue #32), for DeviceAdam
 * (src/nn/adam.ts), instead of its ~13 elementwise ops and ~7 scalar uploads per variable (the
 * bench U-Net's train step: 1649 dispatches, ~1000 of them Adam's; 577 uploads, all Adam's):
 *   m' = β₁m + (1−β₁)g;   v' = β₂v + (1−β₂)g²;   w' = w·decay − stepSize·m'/(√(v'/c2) + ε)
 * with stepSize = lr/c1 and decay = 1 − lr·wd computed on the host, in the order DeviceAdam's ops
 * use. The step's constants travel as uniforms (no uploads). Three programs, not one: a tfjs
 * program has one output, and writing m in place while reading it would alias a binding.
 * Outputs are flat [n]: the caller reshapes (free: same data).
 */
import {
  engine,
  getKernel,
  registerKernel,
  type KernelFunc,
  type NamedAttrMap,
  type Tensor,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
// Types only: importing the package registers its backend, which must wait until navigator.gpu exists.
import type { WebGPUBackend, webgpu_util as WebGpuUtil } from '@tensorflow/tfjs-backend-webgpu';

export const FUSED_ADAM = 'SddAdamStep';

/** The step's constants (host doubles, cast to f32 as the ops path casts its scalars). */
export interface AdamStepAttrs {
  beta1: number;
  beta2: number;
  /** lr / (1 − β₁ᵗ). */
  stepSize: number;
  /** 1 − β₂ᵗ. */
  c2: number;
  eps: number;
  /** 1 − lr·weightDecay. */
  decay: number;
}

/** 1 − β is formed on the host in double, as the ops path's scalar (1 − 0.9f in f32 is another number). */
type Uniform = keyof AdamStepAttrs | 'oneMinusBeta1' | 'oneMinusBeta2';
const UNIFORMS: Uniform[] = ['beta1', 'beta2', 'oneMinusBeta1', 'oneMinusBeta2', 'stepSize', 'c2', 'eps', 'decay'];

const BODIES = {
  m: { inputs: ['M', 'G'], expr: 'uniforms.beta1 * M[index] + uniforms.oneMinusBeta1 * G[index]' },
  v: { inputs: ['V', 'G'], expr: 'uniforms.beta2 * V[index] + uniforms.oneMinusBeta2 * (G[index] * G[index])' },
  w: {
    inputs: ['W', 'M', 'V'],
    expr: 'uniforms.decay * W[index] - (M[index] * uniforms.stepSize) / (sqrt(V[index] / uniforms.c2) + uniforms.eps)',
  },
} as const;

class AdamProgram {
  readonly variableNames: string[];
  readonly uniforms = UNIFORMS.map((u) => `${u} : f32,`).join(' ');
  readonly size = true;
  readonly workgroupSize: [number, number, number] = [64, 1, 1];
  readonly outputShape: number[];
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];
  readonly shaderKey: string;

  constructor(
    private readonly kind: keyof typeof BODIES,
    n: number,
    util: typeof WebGpuUtil,
  ) {
    this.variableNames = [...BODIES[kind].inputs];
    this.outputShape = [n];
    this.dispatchLayout = util.flatDispatchLayout(this.outputShape);
    this.dispatch = util.computeDispatch(this.dispatchLayout, this.outputShape, this.workgroupSize) as [
      number,
      number,
      number,
    ];
    this.shaderKey = `sdd_adam_${kind}`;
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          result[index] = ${BODIES[this.kind].expr};
        }
      }`;
  }
}

let util: typeof WebGpuUtil | null = null;

const kernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { w, g, m, v } = inputs as Record<'w' | 'g' | 'm' | 'v', TensorInfo>;
  // tfjs types kernel attrs loosely (NamedAttrMap); this kernel's are fixed by its registration.
  const a = attrs as unknown as AdamStepAttrs;
  // Registered on webgpu only: the backend is tfjs-backend-webgpu's.
  const gpu = backend as unknown as WebGPUBackend;
  const n = w.shape.reduce((x, y) => x * y, 1);
  const values: Record<Uniform, number> = { ...a, oneMinusBeta1: 1 - a.beta1, oneMinusBeta2: 1 - a.beta2 };
  const uniforms = UNIFORMS.map((u) => ({ type: 'float32', data: [values[u]] }));
  const run = (kind: keyof typeof BODIES, xs: TensorInfo[]) =>
    gpu.runWebGPUProgram(new AdamProgram(kind, n, util!) as never, xs, 'float32', uniforms);
  const mi = run('m', [m, g]);
  const vi = run('v', [v, g]);
  return [mi, vi, run('w', [w, mi, vi])];
};

/** Registers the kernel on webgpu (called when that backend starts, its package imported). */
export async function registerFusedAdam(backendName = 'webgpu'): Promise<void> {
  if (getKernel(FUSED_ADAM, backendName)) return;
  ({ webgpu_util: util } = await import('@tensorflow/tfjs-backend-webgpu'));
  registerKernel({ kernelName: FUSED_ADAM, backendName, kernelFunc: kernel });
}

export function hasFusedAdam(backendName: string): boolean {
  return getKernel(FUSED_ADAM, backendName) != null;
}

/** [m', v', w'], each flat [n], from w, g, m, v of one variable (any shape, the same size). */
export function fusedAdamStep(
  w: Tensor,
  g: Tensor,
  m: Tensor,
  v: Tensor,
  attrs: AdamStepAttrs,
): [Tensor, Tensor, Tensor] {
  // NamedAttrMap has no slot for a plain object of numbers; runKernel passes it through as is.
  return engine().runKernel(FUSED_ADAM, { w, g, m, v }, attrs as unknown as NamedAttrMap) as unknown as [
    Tensor,
    Tensor,
    Tensor,
  ];
}
