/**
 * GroupNorm followed by SiLU as one webgpu kernel (issue #32: fewer dispatches per block). The
 * composite (nn/layers groupNormComposite, then silu) issues ~12 dispatches forward and ~25
 * backward per GroupNorm→SiLU site; here the forward is one dispatch and the backward four:
 *   forward   one workgroup per (image, group): mean, then the centred variance (two passes, as
 *             tf.moments), then y = silu((x − μ)/σ·γ + β) for the group's elements;
 *   backward  R: one workgroup per (image, group) recomputes μ, 1/σ and reduces, per channel,
 *             Σ du and Σ du·x̂ (du = dy·silu′(u), u = x̂·γ + β) and, per group, their γ-weighted
 *             sums; D: dx = (γ·du − mean_g(γ·du) − x̂·mean_g(γ·du·x̂))/σ, elementwise;
 *             two small passes sum R's per-channel sums over the images into dγ and dβ.
 * Statistics are not kept from the forward: R recomputes them (a tfjs program has one output).
 * Only webgpu has the kernel; other backends keep the unfused ops (nn/layers groupNormSiluOp).
 */
import { getKernel, type GradConfig, type KernelFunc, type Tensor, type TensorInfo } from '@tensorflow/tfjs-core';
// Types only: importing the package registers its backend, which must wait until navigator.gpu exists.
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { firstDy, kernelAttrs, registerCustomKernels, runCustomKernel } from './custom_kernel.js';
import { layoutOf, type GroupNormAttrs, type Layout } from './group_norm.js';

const GROUP_NORM_SILU = 'SddGroupNormSilu';
export const GROUP_NORM_SILU_GRAD = 'SddGroupNormSiluGrad';

/** Threads per workgroup (WebGPU's default limit; a power of two for the tree reduction). */
const WG = 256;

/** The shape constants every program bakes in (tfjs keys its pipelines by rank, not shape). */
function constants({ B, P, C, G }: Layout, eps: number): string {
  const cg = C / G;
  const lanes = Math.min(cg, WG);
  return `
      const B = ${B}; const P = ${P}; const C = ${C}; const G = ${G}; const CG = ${cg}; const N = ${P * cg};
      const EPS : f32 = ${eps.toExponential()}; const WG = ${WG};
      const L = ${4 * G + 2 * C}; const LANES = ${lanes}; const ROWS = ${Math.floor(WG / lanes)};`;
}

/** Workgroup sum and per-group statistics of the program's X (for the per-group programs). */
const STATS = `
      var<workgroup> red : array<f32, WG>;
      var<workgroup> red2 : array<f32, WG>;
      fn wgSum(v : f32) -> f32 {
        let t = localId.x;
        red[t] = v;
        workgroupBarrier();
        for (var s = u32(WG) / 2u; s > 0u; s = s / 2u) {
          if (t < s) { red[t] = red[t] + red[t + s]; }
          workgroupBarrier();
        }
        let r = red[0];
        workgroupBarrier();
        return r;
      }
      // Element e of group g of image b, e = position·CG + channel within the group.
      fn xAt(b : i32, g : i32, e : i32) -> i32 {
        let p = e / CG;
        return (b * P + p) * C + g * CG + (e - p * CG);
      }
      // (mean, 1/σ): the mean first, then the mean squared deviation from it, as tf.moments.
      fn groupStats(b : i32, g : i32) -> vec2<f32> {
        var s = 0.0;
        for (var e = i32(localId.x); e < N; e += WG) { s += X[xAt(b, g, e)]; }
        let mean = wgSum(s) / f32(N);
        var q = 0.0;
        for (var e = i32(localId.x); e < N; e += WG) {
          let d = X[xAt(b, g, e)] - mean;
          q += d * d;
        }
        return vec2<f32>(mean, inverseSqrt(wgSum(q) / f32(N) + EPS));
      }
      // The image of this workgroup. The clamp never binds; reading a uniform keeps tfjs's uniform
      // binding in the shader (the compiler drops unused bindings, and tfjs always binds it).
      fn image() -> i32 { return min(i32(workgroupId.y), uniforms.outShape[0] - 1); }`;

const SILU = `
      fn sigmoid(u : f32) -> f32 { return 1.0 / (1.0 + exp(-u)); }
      // d silu(u)/du = σ(u)·(1 + u·(1 − σ(u)))
      fn siluGrad(u : f32) -> f32 {
        let s = sigmoid(u);
        return s * (1.0 + u * (1.0 - s));
      }`;

/** main of a per-group program: body runs with its group g, image b and their st = (μ, 1/σ). */
const perGroup = (body: string) => `${STATS}${SILU}
      fn main(index : i32) {
        let g = i32(workgroupId.x);
        let b = image();
        let st = groupStats(b, g);${body}
      }`;

const FORWARD = perGroup(`
        for (var e = i32(localId.x); e < N; e += WG) {
          let i = xAt(b, g, e);
          let c = g * CG + e % CG;
          let u = (X[i] - st.x) * st.y * Gm[c] + Bt[c];
          result[i] = u * sigmoid(u);
        }`);

/**
 * Output per image b, at b·L: [μ, 1/σ, mean_g(γ·du), mean_g(γ·du·x̂)] per group, then [Σ du, Σ du·x̂]
 * per channel. Threads are LANES channels × ROWS positions (coalesced reads along the channels).
 */
const REDUCE = perGroup(`
        let t = i32(localId.x);
        let lane = t % LANES;
        let row = t / LANES;
        var s1 = 0.0;
        var s2 = 0.0;
        for (var c0 = 0; c0 < CG; c0 += LANES) {
          let cl = c0 + lane;
          let c = g * CG + min(cl, CG - 1);
          var a1 = 0.0;
          var a2 = 0.0;
          if (row < ROWS && cl < CG) {
            for (var p = row; p < P; p += ROWS) {
              let i = (b * P + p) * C + c;
              let xh = (X[i] - st.x) * st.y;
              let du = Dy[i] * siluGrad(xh * Gm[c] + Bt[c]);
              a1 += du;
              a2 += du * xh;
            }
          }
          s1 += Gm[c] * a1;
          s2 += Gm[c] * a2;
          red[t] = a1;
          red2[t] = a2;
          workgroupBarrier();
          if (row == 0 && cl < CG) {
            var r1 = 0.0;
            var r2 = 0.0;
            for (var r = 0; r < ROWS; r++) {
              r1 += red[r * LANES + lane];
              r2 += red2[r * LANES + lane];
            }
            result[b * L + 4 * G + 2 * c] = r1;
            result[b * L + 4 * G + 2 * c + 1] = r2;
          }
          workgroupBarrier();
        }
        let m1 = wgSum(s1) / f32(N);
        let m2 = wgSum(s2) / f32(N);
        if (t == 0) {
          let o = b * L + 4 * g;
          result[o] = st.x;
          result[o + 1] = st.y;
          result[o + 2] = m1;
          result[o + 3] = m2;
        }`);

const DX = `${SILU}
      fn main(index : i32) {
        if (index < uniforms.size) {
          let c = index % C;
          let s = (index / (P * C)) * L + 4 * (c / CG);
          let xh = (X[index] - R[s]) * R[s + 1];
          let du = Dy[index] * siluGrad(xh * Gm[c] + Bt[c]);
          result[index] = R[s + 1] * (Gm[c] * du - R[s + 2] - xh * R[s + 3]);
        }
      }`;

/** dβ (K = 0) or dγ (K = 1): R's per-channel sums over the images. */
const PARAM = (k: number) => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var a = 0.0;
          for (var b = 0; b < B; b++) { a += R[b * L + 4 * G + 2 * index + ${k}]; }
          result[index] = a;
        }
      }`;

interface ProgramSpec {
  /** Input names, in the order of the tensors passed (each becomes a binding of that name). */
  names: string[];
  shape: number[];
  body: string;
  name: string;
  /** One workgroup per (group, image), else one thread per output element. */
  perGroup: boolean;
}

/** A tfjs webgpu program for one of the shaders above, on the layout l. */
class Program {
  readonly variableNames: string[];
  readonly outputShape: number[];
  readonly workgroupSize: [number, number, number] = [WG, 1, 1];
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];
  readonly size: boolean;
  readonly shaderKey: string;

  constructor(
    private readonly spec: ProgramSpec,
    private readonly l: Layout,
    private readonly eps: number,
  ) {
    this.variableNames = spec.names;
    this.outputShape = spec.shape;
    this.dispatchLayout = { x: spec.shape.map((_, i) => i) };
    const n = spec.shape.reduce((a, b) => a * b, 1);
    // Flat dispatches over 65535 workgroups are folded into y by tfjs (getGlobalIndex follows).
    this.dispatch = spec.perGroup ? [l.G, l.B, 1] : [Math.ceil(n / WG), 1, 1];
    this.size = !spec.perGroup;
    this.shaderKey = `sdd_gn_silu_${spec.name}_${l.B}_${l.P}_${l.C}_${l.G}_${eps}`;
  }

  getUserCode(): string {
    return constants(this.l, this.eps) + this.spec.body;
  }
}

const forwardKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, gamma, beta } = inputs as Record<'x' | 'gamma' | 'beta', TensorInfo>;
  const { groups, eps } = kernelAttrs<GroupNormAttrs>(attrs);
  const l = layoutOf(x, groups);
  const spec = { names: ['X', 'Gm', 'Bt'], shape: x.shape, body: FORWARD, name: 'fwd', perGroup: true };
  // Registered on webgpu only: the backend is tfjs-backend-webgpu's.
  return (backend as unknown as WebGPUBackend).runWebGPUProgram(
    new Program(spec, l, eps) as never,
    [x, gamma, beta],
    'float32',
  );
};

const backwardKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, x, gamma, beta } = inputs as Record<'dy' | 'x' | 'gamma' | 'beta', TensorInfo>;
  const { groups, eps } = kernelAttrs<GroupNormAttrs>(attrs);
  const l = layoutOf(x, groups);
  // Registered for webgpu only: the backend a kernel function receives is typed as the base class.
  const gpu = backend as unknown as WebGPUBackend;
  const run = (spec: ProgramSpec, xs: TensorInfo[]) =>
    gpu.runWebGPUProgram(new Program(spec, l, eps) as never, xs, 'float32');
  const all = ['X', 'Dy', 'Gm', 'Bt'];
  const rShape = [l.B, 4 * l.G + 2 * l.C];
  const r = run({ names: all, shape: rShape, body: REDUCE, name: 'reduce', perGroup: true }, [x, dy, gamma, beta]);
  const dxSpec = { names: [...all, 'R'], shape: x.shape, body: DX, name: 'dx', perGroup: false };
  const dx = run(dxSpec, [x, dy, gamma, beta, r]);
  const param = (k: number) => run({ names: ['R'], shape: [l.C], body: PARAM(k), name: `p${k}`, perGroup: false }, [r]);
  const dGamma = param(1);
  const dBeta = param(0);
  gpu.disposeData(r.dataId);
  return [dx, dGamma, dBeta];
};

const gradient: GradConfig = {
  kernelName: GROUP_NORM_SILU,
  inputsToSave: ['x', 'gamma', 'beta'],
  gradFunc: (dy, [x, gamma, beta], attrs) => {
    const [dx, dGamma, dBeta] = runCustomKernel(GROUP_NORM_SILU_GRAD, { dy: firstDy(dy), x, gamma, beta }, attrs ?? {});
    return { x: () => dx, gamma: () => dGamma, beta: () => dBeta };
  },
};

/** Registers both kernels on webgpu, and the gradient once. */
export function registerGroupNormSilu(backendName = 'webgpu'): void {
  if (getKernel(GROUP_NORM_SILU, backendName)) return;
  const kernels = { [GROUP_NORM_SILU]: forwardKernel, [GROUP_NORM_SILU_GRAD]: backwardKernel };
  registerCustomKernels(backendName, kernels, gradient);
}

/** silu(GroupNorm(x)) through the fused kernel (x NHWC float32, C divisible by groups). */
export function groupNormSiluFused(x: Tensor, gamma: Tensor, beta: Tensor, groups: number, eps: number): Tensor {
  const attrs: GroupNormAttrs = { groups, eps };
  return runCustomKernel(GROUP_NORM_SILU, { x, gamma, beta }, attrs)[0];
}

let fusions = true;

/**
 * Whether ops on `backendName` take the webgpu fusions (this kernel, SiLU as one kernel, conv and
 * matmul with their bias fused): webgpu only, and on unless turned off (bench/webgpu_counts.ts
 * measures both ways).
 */
export function webgpuFusions(backendName: string): boolean {
  return fusions && backendName === 'webgpu';
}

export function setWebGpuFusions(on: boolean): void {
  fusions = on;
}
