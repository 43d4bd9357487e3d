/**
 * Fused scaled dot-product attention for the webgpu backend: softmax(q·kᵀ·scale)·v computed
 * tile by tile with an online softmax (Milakov & Gimelshein 2018; the FlashAttention forward),
 * so the T × T score matrix never exists in GPU memory. At SD's 64² latents (4096 tokens, 8
 * heads) that matrix is 512 MB per image and its matMul + softmax were the slowest ops measured.
 *
 * One workgroup of BR threads takes BR query rows of one (batch, head); each thread keeps its
 * query row, running maximum, running sum and output accumulator in registers, and the
 * workgroup walks the keys in tiles of BC rows of K and V staged in workgroup memory. BC is
 * the largest tile (≤ 64) whose K and V fit the device's workgroup storage.
 *
 * The gradient is written out with ops (dV = Pᵀ·dO, dS = P ⊙ (dO·Vᵀ − rowsum(dO ⊙ O)),
 * dQ = dS·K·scale, dK = dSᵀ·Q·scale): it materialises P, as the unfused path does. SDD and the
 * baselines never differentiate through the ε-model (score distillation skips its Jacobian), so
 * this path is for completeness and tests.
 */
import {
  engine,
  getKernel,
  type GradConfig,
  type KernelFunc,
  type Tensor,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { firstDy, kernelAttrs, registerCustomKernels, runCustomKernel } from './custom_kernel.js';

export const FUSED_ATTENTION = 'SddFusedAttention';

/** Query rows per workgroup (one per thread). */
const BR = 64;
const MAX_BC = 64;

interface AttentionAttrs {
  scale: number;
}

/** Keys per tile so that the K and V tiles (2·BC·D floats) fit `storageBytes` of workgroup memory. */
function keyTile(headDim: number, storageBytes: number): number {
  return Math.max(1, Math.min(MAX_BC, Math.floor(storageBytes / (8 * headDim))));
}

class FusedAttentionProgram {
  readonly variableNames = ['Q', 'K', 'V'];
  readonly uniforms = 'scale : f32,';
  readonly workgroupSize: [number, number, number] = [BR, 1, 1];
  readonly dispatchLayout = { x: [0, 1, 2] };
  readonly dispatch: [number, number, number];
  readonly shaderKey: string;

  constructor(
    readonly outputShape: number[],
    private readonly bc: number,
  ) {
    const [bh, tq] = outputShape;
    this.dispatch = [Math.ceil(tq / BR), bh, 1];
    this.shaderKey = `sdd_fused_attention_${outputShape[2]}_${bc}`;
  }

  getUserCode(): string {
    const d = this.outputShape[2];
    const bc = this.bc;
    return `
      const D = ${d};
      const BC = ${bc};
      const BR = ${BR};
      var<workgroup> kTile : array<f32, ${bc * d}>;
      var<workgroup> vTile : array<f32, ${bc * d}>;
      var<private> q : array<f32, ${d}>;
      var<private> acc : array<f32, ${d}>;
      var<private> s : array<f32, ${bc}>;
      ${KEY_TILE}
      ${MAIN}`;
  }
}

/**
 * One tile of keys (n ≤ BC rows from k0), staged in workgroup memory: the scores s of this
 * thread's query row, then the online-softmax update of (m, l, acc). Returns the new (m, l).
 */
const KEY_TILE = `
      fn keyTile(bh : i32, k0 : i32, tk : i32, m : f32, l : f32) -> vec2<f32> {
        let n = min(BC, tk - k0);
        for (var e = i32(localId.x); e < n * D; e += BR) {
          let src = (bh * tk + k0) * D + e;
          kTile[e] = K[src];
          vTile[e] = V[src];
        }
        workgroupBarrier();
        var tileMax = -3.402823e+38;
        for (var c = 0; c < n; c++) {
          var dot = 0.0;
          for (var j = 0; j < D; j++) {
            dot += q[j] * kTile[c * D + j];
          }
          s[c] = dot;
          tileMax = max(tileMax, dot);
        }
        let mNew = max(m, tileMax);
        let correction = exp(m - mNew);
        var lNew = l * correction;
        for (var j = 0; j < D; j++) {
          acc[j] = acc[j] * correction;
        }
        for (var c = 0; c < n; c++) {
          let p = exp(s[c] - mNew);
          lNew += p;
          for (var j = 0; j < D; j++) {
            acc[j] += p * vTile[c * D + j];
          }
        }
        workgroupBarrier();
        return vec2<f32>(mNew, lNew);
      }`;

// tfjs calls main with the flat global index (a flat dispatch layout); the tiling uses the workgroup ids.
const MAIN = `
      fn main(index : i32) {
        let bh = i32(workgroupId.y);
        let row = i32(workgroupId.x) * BR + i32(localId.x);
        let tq = uniforms.qShape[1];
        let tk = uniforms.kShape[1];
        let qBase = (bh * tq + min(row, tq - 1)) * D;
        for (var j = 0; j < D; j++) {
          q[j] = Q[qBase + j] * uniforms.scale;
          acc[j] = 0.0;
        }
        var ml = vec2<f32>(-3.402823e+38, 0.0);
        for (var k0 = 0; k0 < tk; k0 += BC) {
          ml = keyTile(bh, k0, tk, ml.x, ml.y);
        }
        if (row < tq) {
          let oBase = (bh * tq + row) * D;
          for (var j = 0; j < D; j++) {
            result[oBase + j] = acc[j] / ml.y;
          }
        }
      }`;

const fusedKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { q, k, v } = inputs as Record<'q' | 'k' | 'v', TensorInfo>;
  const { scale } = kernelAttrs<AttentionAttrs>(attrs);
  // Registered on webgpu only: the backend is tfjs-backend-webgpu's, whose device limits we read.
  const gpu = backend as unknown as WebGPUBackend & { device: { limits: { maxComputeWorkgroupStorageSize: number } } };
  const bc = keyTile(k.shape[2], gpu.device.limits.maxComputeWorkgroupStorageSize);
  const program = new FusedAttentionProgram(q.shape, bc);
  return gpu.runWebGPUProgram(program as never, [q, k, v], 'float32', [{ type: 'float32', data: [scale] }]);
};

/** The composite the kernel replaces, on [BH, T, D] tensors: also the gradient's forward. */
function attentionComposite(q: Tensor, k: Tensor, v: Tensor, scale: number): { p: Tensor; o: Tensor } {
  const e = engine();
  const logits = e.runKernel('BatchMatMul', { a: q, b: k }, { transposeA: false, transposeB: true }) as Tensor;
  const scaled = e.runKernel('Multiply', {
    a: logits,
    b: e.makeTensor(new Float32Array([scale]), [], 'float32') as Tensor,
  }) as Tensor;
  // The kernel wants the axis resolved (the op layer turns -1 into rank - 1 before calling it).
  const p = e.runKernel('Softmax', { logits: scaled }, { dim: scaled.shape.length - 1 }) as Tensor;
  const o = e.runKernel('BatchMatMul', { a: p, b: v }, { transposeA: false, transposeB: false }) as Tensor;
  return { p, o };
}

const gradient: GradConfig = {
  kernelName: FUSED_ATTENTION,
  inputsToSave: ['q', 'k', 'v'],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [q, k, v, o] = saved;
    const { scale } = kernelAttrs<AttentionAttrs>(attrs);
    const dO = firstDy(dy);
    const e = engine();
    const mm = (a: Tensor, b: Tensor, transposeA: boolean, transposeB: boolean) =>
      e.runKernel('BatchMatMul', { a, b }, { transposeA, transposeB }) as Tensor;
    const mul = (a: Tensor, b: Tensor) => e.runKernel('Multiply', { a, b }) as Tensor;
    const { p } = attentionComposite(q, k, v, scale);
    const rowDot = e.runKernel('Sum', { x: mul(dO, o) }, { axis: [2], keepDims: true }) as Tensor;
    const dS = mul(p, e.runKernel('Sub', { a: mm(dO, v, false, true), b: rowDot }) as Tensor);
    const s = e.makeTensor(new Float32Array([scale]), [], 'float32') as Tensor;
    return {
      q: () => mul(mm(dS, k, false, false), s),
      k: () => mul(mm(dS, q, true, false), s),
      v: () => mm(p, dO, true, false),
    };
  },
};

/** Registers the kernel on webgpu (called when that backend starts). */
export function registerFusedAttention(backendName = 'webgpu'): void {
  if (getKernel(FUSED_ATTENTION, backendName)) return;
  registerCustomKernels(backendName, { [FUSED_ATTENTION]: fusedKernel }, gradient);
}

export function hasFusedAttention(backendName: string): boolean {
  return getKernel(FUSED_ATTENTION, backendName) != null;
}

/** softmax(q·kᵀ·scale)·v through the fused kernel; q [BH, Tq, D], k and v [BH, Tk, D]. */
export function fusedAttention(q: Tensor, k: Tensor, v: Tensor, scale: number): Tensor {
  const attrs: AttentionAttrs = { scale };
  return runCustomKernel(FUSED_ATTENTION, { q, k, v }, attrs)[0];
}
