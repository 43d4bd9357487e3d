/**
 * GroupNorm as one kernel (and its gradient as another) for wasm. As a composite of tfjs ops a
 * GroupNorm is ~10 kernels forward and ~15 backward, several of them broadcasting binary ops that
 * wasm runs on a slow generic path and reductions over non-innermost axes that it transposes
 * first: about a quarter of a VAE training step (bench/kernels measures the ratio). Here each
 * direction is two passes over the data on the wasm heap, with statistics accumulated in float64.
 *
 * Forward outputs y plus the per-(image, group) mean and 1/σ, which the gradient reuses.
 */
import { getKernel, type GradConfig, type KernelFunc, type Tensor, type TensorInfo } from '@tensorflow/tfjs-core';
import type { HeapBackend } from './batch_matmul.js';
import { firstDy, kernelAttrs, registerCustomKernels, runCustomKernel } from './custom_kernel.js';

const GROUP_NORM = 'SddGroupNorm';
const GROUP_NORM_GRAD = 'SddGroupNormGrad';

export interface GroupNormAttrs {
  groups: number;
  eps: number;
}

/** x as [B, P, C] (P = H·W); channels of group g are g·C/G … (g+1)·C/G − 1. */
export interface Layout {
  B: number;
  P: number;
  C: number;
  G: number;
}

/**
 * Per-channel Σ a and Σ a·b over one image's positions (from offset base), as a plain indexed loop
 * that V8 compiles tightly; folded into groups after (an indirect group index in the inner loop
 * costs about twice as much). The forward passes (x, x), the backward (dy, x).
 */
function channelSums(
  a: Float32Array,
  b: Float32Array,
  base: number,
  { P, C }: Layout,
  s: Float64Array,
  q: Float64Array,
): void {
  s.fill(0);
  q.fill(0);
  for (let p = 0, row = base; p < P; p++, row += C) {
    for (let c = 0; c < C; c++) {
      const v = a[row + c];
      s[c] += v;
      q[c] += v * b[row + c];
    }
  }
}

/** y = (x − μ)/σ·γ + β per group; writes μ and 1/σ per (b, g). Biased variance, as tf.moments. */
function groupNormForward(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  l: Layout,
  eps: number,
  y: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
): void {
  const { B, P, C, G } = l;
  const cg = C / G;
  const n = P * cg;
  const [s, q, scale, shift] = [0, 0, 0, 0].map(() => new Float64Array(C));
  for (let b = 0; b < B; b++) {
    const base = b * P * C;
    channelSums(x, x, base, l, s, q);
    for (let g = 0; g < G; g++) {
      let sg = 0;
      let qg = 0;
      for (let c = g * cg; c < (g + 1) * cg; c++) {
        sg += s[c];
        qg += q[c];
      }
      const m = sg / n;
      // float64 sums of float32 values: E[x²] − μ² loses nothing that matters at these sizes.
      const r = 1 / Math.sqrt(Math.max(qg / n - m * m, 0) + eps);
      mean[b * G + g] = m;
      rstd[b * G + g] = r;
      for (let c = g * cg; c < (g + 1) * cg; c++) {
        scale[c] = r * gamma[c];
        shift[c] = beta[c] - m * scale[c];
      }
    }
    for (let p = 0, row = base; p < P; p++, row += C) {
      for (let c = 0; c < C; c++) y[row + c] = x[row + c] * scale[c] + shift[c];
    }
  }
}

/** Per-channel sums of one image (Σ dy, Σ dy·x) and what the backward makes of them. */
interface BackwardScratch {
  sdy: Float64Array;
  sdyx: Float64Array;
  /** Σ dy·x̂ and Σ dy over all images: dγ and dβ. */
  dg: Float64Array;
  db: Float64Array;
  /** dx = a·dy + k1·x + k0, per channel. */
  a: Float64Array;
  k1: Float64Array;
  k0: Float64Array;
}

/** Image b's share of dγ, dβ and its dx coefficients, from its per-channel sums (see below). */
function backwardCoefficients(
  b: number,
  { P, C, G }: Layout,
  gamma: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  w: BackwardScratch,
): void {
  const cg = C / G;
  const n = P * cg;
  for (let g = 0; g < G; g++) {
    const m = mean[b * G + g];
    const r = rstd[b * G + g];
    let s1 = 0;
    let s2 = 0;
    for (let c = g * cg; c < (g + 1) * cg; c++) {
      const dyxh = (w.sdyx[c] - m * w.sdy[c]) * r; // Σ dy·x̂ over this image
      w.db[c] += w.sdy[c];
      w.dg[c] += dyxh;
      s1 += gamma[c] * w.sdy[c];
      s2 += gamma[c] * dyxh;
    }
    s1 /= n;
    s2 /= n;
    // dx = r·(γ·dy − s1 − x̂·s2) with x̂ = (x − m)·r
    for (let c = g * cg; c < (g + 1) * cg; c++) {
      w.a[c] = r * gamma[c];
      w.k1[c] = -r * r * s2;
      w.k0[c] = -r * s1 + r * r * s2 * m;
    }
  }
}

/**
 * With x̂ = (x − μ)/σ and d = dy·γ: dβ = Σ dy, dγ = Σ dy·x̂ (over b and positions), and
 * dx = (d − mean_g(d) − x̂·mean_g(d·x̂))/σ, the means over each (image, group).
 * Per channel, Σ d = γ·Σ dy and Σ d·x̂ = γ·Σ dy·x̂, and Σ dy·x̂ = (Σ dy·x − μ·Σ dy)/σ, so one pass
 * of plain per-channel sums (Σ dy, Σ dy·x) gives every reduction.
 */
function groupNormBackward(
  dy: Float32Array,
  x: Float32Array,
  gamma: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  l: Layout,
  dx: Float32Array,
  dGamma: Float32Array,
  dBeta: Float32Array,
): void {
  const { B, P, C } = l;
  const [sdy, sdyx, dg, db, a, k1, k0] = [0, 0, 0, 0, 0, 0, 0].map(() => new Float64Array(C));
  const w: BackwardScratch = { sdy, sdyx, dg, db, a, k1, k0 };
  for (let b = 0; b < B; b++) {
    const base = b * P * C;
    channelSums(dy, x, base, l, sdy, sdyx);
    backwardCoefficients(b, l, gamma, mean, rstd, w);
    for (let p = 0, row = base; p < P; p++, row += C) {
      for (let c = 0; c < C; c++) dx[row + c] = a[c] * dy[row + c] + k1[c] * x[row + c] + k0[c];
    }
  }
  for (let c = 0; c < C; c++) {
    dGamma[c] = dg[c];
    dBeta[c] = db[c];
  }
}

export function layoutOf(x: TensorInfo, groups: number): Layout {
  if (x.shape.length !== 4) throw new Error(`${GROUP_NORM}: x must be rank 4 (NHWC), got [${x.shape}]`);
  const [B, H, W, C] = x.shape;
  if (C % groups !== 0) throw new Error(`${GROUP_NORM}: ${C} channels do not split into ${groups} groups`);
  return { B, P: H * W, C, G: groups };
}

function float32(name: string, ...ts: TensorInfo[]): void {
  for (const t of ts) if (t.dtype !== 'float32') throw new Error(`${name}: float32 only, got ${t.dtype}`);
}

/** Output allocation and views on the heap backend (wasm). */
function heapIo(backend: unknown): { out: (shape: number[]) => TensorInfo; v: (t: TensorInfo) => Float32Array } {
  // Registered on heap backends only (registerReplacementKernels).
  const heap = backend as HeapBackend;
  return {
    out: (shape) => heap.makeOutput(shape, 'float32'),
    // Take views after every allocation: growing the wasm memory detaches older views.
    v: (t) => heap.typedArrayFromHeap(t),
  };
}

const forwardKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, gamma, beta } = inputs as Record<'x' | 'gamma' | 'beta', TensorInfo>;
  const { groups, eps } = kernelAttrs<GroupNormAttrs>(attrs);
  float32(GROUP_NORM, x, gamma, beta);
  const l = layoutOf(x, groups);
  const { out, v } = heapIo(backend);
  const [y, mean, rstd] = [out(x.shape), out([l.B, l.G]), out([l.B, l.G])];
  groupNormForward(v(x), v(gamma), v(beta), l, eps, v(y), v(mean), v(rstd));
  return [y, mean, rstd];
};

const backwardKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, x, gamma, mean, rstd } = inputs as Record<'dy' | 'x' | 'gamma' | 'mean' | 'rstd', TensorInfo>;
  float32(GROUP_NORM_GRAD, dy, x, gamma, mean, rstd);
  const l = layoutOf(x, kernelAttrs<GroupNormAttrs>(attrs).groups);
  const { out, v } = heapIo(backend);
  const [dx, dGamma, dBeta] = [out(x.shape), out([l.C]), out([l.C])];
  groupNormBackward(v(dy), v(x), v(gamma), v(mean), v(rstd), l, v(dx), v(dGamma), v(dBeta));
  return [dx, dGamma, dBeta];
};

const gradient: GradConfig = {
  kernelName: GROUP_NORM,
  inputsToSave: ['x', 'gamma'],
  outputsToSave: [false, true, true],
  gradFunc: (dy, [x, gamma, mean, rstd], attrs) => {
    const [dx, dGamma, dBeta] = runCustomKernel(
      GROUP_NORM_GRAD,
      { dy: firstDy(dy), x, gamma, mean, rstd },
      attrs ?? {},
    );
    return { x: () => dx, gamma: () => dGamma, beta: () => dBeta };
  },
};

/** Registers both kernels on a heap backend (wasm) and the gradient (once, backend-independent). */
export function registerGroupNorm(backendName: string): void {
  registerCustomKernels(backendName, { [GROUP_NORM]: forwardKernel, [GROUP_NORM_GRAD]: backwardKernel }, gradient);
}

/** Whether the active backend has the fused kernel (tfjs-node and cpu use the composite). */
export function hasGroupNormKernel(backendName: string): boolean {
  return getKernel(GROUP_NORM, backendName) != null;
}

/** GroupNorm through the fused kernel: y only (μ and 1/σ are kept by the tape, freed here). */
export function groupNormFused(x: Tensor, gamma: Tensor, beta: Tensor, groups: number, eps: number): Tensor {
  const attrs: GroupNormAttrs = { groups, eps };
  const [y, mean, rstd] = runCustomKernel(GROUP_NORM, { x, gamma, beta }, attrs);
  mean.dispose();
  rstd.dispose();
  return y;
}
