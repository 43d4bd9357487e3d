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
 * Causal (`causal: true`, CLIP's text tower): query row i sees keys j ≤ i only. A workgroup stops
 * after the key tile holding its last row's diagonal, and within a tile each thread scores only
 * its keys j ≤ i. The ops path adds −1e9 above the diagonal instead (causalMaskValues), whose
 * exp underflows to exactly 0 in float32, so both give the same softmax up to rounding.
 *
 * The gradient is written out with ops (dV = Pᵀ·dO, dS = P ⊙ (dO·Vᵀ − rowsum(dO ⊙ O)),
 * dQ = dS·K·scale, dK = dSᵀ·Q·scale): it materialises P (with the causal mask added to its
 * logits, so masked entries of P and dS are 0), as the unfused path does. SDD and the
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
  /** Top-left causal: query row i attends to keys j ≤ i. */
  causal: boolean;
}

/**
 * The additive causal mask [tq, tk] (row-major): 0 where j ≤ i, −1e9 where j > i. −1e9 rather
 * than −∞: a row's softmax is then exactly that of the allowed positions in float32, and no
 * backend meets ∞ − ∞. The ops path's mask and the fused kernel's gradient both use it.
 */
export function causalMaskValues(tq: number, tk: number): Float32Array {
  const m = new Float32Array(tq * tk);
  for (let i = 0; i < tq; i++) for (let j = i + 1; j < tk; j++) m[i * tk + j] = -1e9;
  return m;
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
    private readonly causal: boolean,
  ) {
    const [bh, tq] = outputShape;
    this.dispatch = [Math.ceil(tq / BR), bh, 1];
    this.shaderKey = `sdd_fused_attention_${outputShape[2]}_${bc}_${causal ? 'causal' : 'full'}`;
  }

  getUserCode(): string {
    const d = this.outputShape[2];
    const bc = this.bc;
    return `
      const D = ${d};
      const BC = ${bc};
      const BR = ${BR};
      const CAUSAL = ${this.causal};
      var<workgroup> kTile : array<f32, ${bc * d}>;
      var<workgroup> vTile : array<f32, ${bc * d}>;
      var<private> q : array<f32, ${d}>;
      var<private> acc : array<f32, ${d}>;
      var<private> s : array<f32, ${bc}>;
      ${this.causal ? CAUSAL_KEY_END : FULL_KEY_END}
      ${KEY_TILE}
      ${MAIN}`;
  }
}

/**
 * One tile of keys (n ≤ BC rows from k0), staged in workgroup memory: the scores s of this
 * thread's query row, then the online-softmax update of (m, l, acc). Returns the new (m, l).
 * Causal: the thread scores only its keys j ≤ row (mine of the n); all n are staged, as the
 * workgroup shares the tile. The first tile (k0 = 0) always holds key 0, so m is finite after it
 * and a later tile with no key of this row leaves (m, l, acc) as they are (correction exp(0) = 1).
 */
const KEY_TILE = `
      fn keyTile(bh : i32, k0 : i32, tk : i32, row : i32, m : f32, l : f32) -> vec2<f32> {
        let n = min(BC, tk - k0);
        let mine = select(n, clamp(row - k0 + 1, 0, n), CAUSAL);
        for (var e = i32(localId.x); e < n * D; e += BR) {
          let src = (bh * tk + k0) * D + e;
          kTile[e] = K[src];
          vTile[e] = V[src];
        }
        workgroupBarrier();
        var tileMax = -3.402823e+38;
        for (var c = 0; c < mine; c++) {
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
        for (var c = 0; c < mine; c++) {
          let p = exp(s[c] - mNew);
          lNew += p;
          for (var j = 0; j < D; j++) {
            acc[j] += p * vTile[c * D + j];
          }
        }
        workgroupBarrier();
        return vec2<f32>(mNew, lNew);
      }`;

/** Where the key tiles end: all tk keys. */
const FULL_KEY_END = `
      fn keyEnd(tq : i32, tk : i32) -> i32 {
        return tk;
      }`;

/**
 * Causal: the key tiles end at the block's last query row. The barriers in keyTile need uniform
 * control flow, and WGSL's analysis sees tfjs's workgroupId as a private (non-uniform) variable,
 * so the end goes through workgroup memory and workgroupUniformLoad (CAUSAL_SHARED_BYTES).
 */
const CAUSAL_KEY_END = `
      var<workgroup> kEndShared : i32;
      fn keyEnd(tq : i32, tk : i32) -> i32 {
        if (localId.x == 0u) {
          kEndShared = min(tk, min(tq, (i32(workgroupId.x) + 1) * BR));
        }
        return workgroupUniformLoad(&kEndShared);
      }`;
/** The workgroup bytes kEndShared takes (Dawn rounds each variable up to 16). */
const CAUSAL_SHARED_BYTES = 16;

/**
 * tfjs calls main with the flat global index (a flat dispatch layout); the tiling uses the workgroup
 * ids. Rows past tq (the ragged tail) compute row tq − 1 and write nothing.
 */
const MAIN = `
      fn main(index : i32) {
        let bh = i32(workgroupId.y);
        let row = i32(workgroupId.x) * BR + i32(localId.x);
        let tq = uniforms.qShape[1];
        let tk = uniforms.kShape[1];
        let qRow = min(row, tq - 1);
        let kEnd = keyEnd(tq, tk);
        let qBase = (bh * tq + qRow) * D;
        for (var j = 0; j < D; j++) {
          q[j] = Q[qBase + j] * uniforms.scale;
          acc[j] = 0.0;
        }
        var ml = vec2<f32>(-3.402823e+38, 0.0);
        for (var k0 = 0; k0 < kEnd; k0 += BC) {
          ml = keyTile(bh, k0, tk, qRow, ml.x, ml.y);
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
  const { scale, causal } = kernelAttrs<AttentionAttrs>(attrs);
  // Registered on webgpu only: the backend is tfjs-backend-webgpu's, whose device limits we read.
  const gpu = backend as unknown as WebGPUBackend & { device: { limits: { maxComputeWorkgroupStorageSize: number } } };
  const storage = gpu.device.limits.maxComputeWorkgroupStorageSize - (causal ? CAUSAL_SHARED_BYTES : 0);
  const bc = keyTile(k.shape[2], storage);
  const program = new FusedAttentionProgram(q.shape, bc, causal);
  return gpu.runWebGPUProgram(program as never, [q, k, v], 'float32', [{ type: 'float32', data: [scale] }]);
};

/** The composite the kernel replaces, on [BH, T, D] tensors: also the gradient's forward. */
function attentionComposite(q: Tensor, k: Tensor, v: Tensor, attrs: AttentionAttrs): { p: Tensor; o: Tensor } {
  const e = engine();
  const logits = e.runKernel('BatchMatMul', { a: q, b: k }, { transposeA: false, transposeB: true }) as Tensor;
  let scaled = e.runKernel('Multiply', {
    a: logits,
    b: e.makeTensor(new Float32Array([attrs.scale]), [], 'float32') as Tensor,
  }) as Tensor;
  if (attrs.causal) {
    const [, tq, tk] = scaled.shape;
    const mask = e.makeTensor(causalMaskValues(tq, tk), [1, tq, tk], 'float32') as Tensor;
    scaled = e.runKernel('Add', { a: scaled, b: mask }) as Tensor;
  }
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
    const { scale, causal } = kernelAttrs<AttentionAttrs>(attrs);
    const dO = firstDy(dy);
    const e = engine();
    const mm = (a: Tensor, b: Tensor, transposeA: boolean, transposeB: boolean) =>
      e.runKernel('BatchMatMul', { a, b }, { transposeA, transposeB }) as Tensor;
    const mul = (a: Tensor, b: Tensor) => e.runKernel('Multiply', { a, b }) as Tensor;
    const { p } = attentionComposite(q, k, v, { scale, causal });
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

/**
 * softmax(q·kᵀ·scale)·v through the fused kernel; q [BH, Tq, D], k and v [BH, Tk, D]; causal: row i
 * attends to keys j ≤ i only.
 */
export function fusedAttention(q: Tensor, k: Tensor, v: Tensor, scale: number, causal = false): Tensor {
  const attrs: AttentionAttrs = { scale, causal };
  return runCustomKernel(FUSED_ATTENTION, { q, k, v }, attrs)[0];
}
