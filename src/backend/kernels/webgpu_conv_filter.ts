/**
 * Conv2DBackpropFilter (NHWC) on webgpu as a tiled implicit GEMM (issue #32; tfjs-backend-webgpu
 * 4.22 runs one thread per filter element over the whole batch). dW viewed as [M = kh·kw·ci, N = co]
 * is Σ_k A[k, m]·dy[k, n] over K = batch·outH·outW, with A[k, m] = x[b, oy·s + ky − pad, ox·s + kx −
 * pad, c] (zero in the padding). When the output has few tiles for K's length, K is split over
 * workgroups (split-K): each writes its partial sums to [splits, M, N] and a second program adds
 * the splits in a fixed order, so results are the same run to run (no atomics).
 */
import type { backend_util } from '@tensorflow/tfjs-core';
import {
  BK,
  KEEP_UNIFORMS,
  MULTIPLY,
  numbersOf,
  TiledProgram,
  tileDecls,
  tileFor,
  type Tile,
} from './webgpu_conv_gemm.js';

/** Workgroups worth filling a large GPU (an H200 has 132 SMs): split-K aims at this many. */
const TARGET_WORKGROUPS = 512;
/**
 * Rows of K a split takes at least: below this an unsplit workgroup is short (≤ 128 steps of BK)
 * and a second dispatch for the sum costs more than it saves (the bench U-Net at B2 32² has none).
 */
const MIN_K_PER_SPLIT = 2048;
/** The partial sums' buffer is kept under this many bytes (and under the binding limit). */
const MAX_PARTIAL_BYTES = 256 * 1024 * 1024;

/** The filter gradient's GEMM: its sizes, tile and split of K. */
export interface FilterGemm {
  m: number;
  n: number;
  k: number;
  tile: Tile;
  splits: number;
  /** Rows of K per split, a multiple of BK. */
  chunk: number;
}

/** The GEMM for `info`, K split when few tiles cover the output (bindingLimit bounds the partials). */
export function filterGemm(info: backend_util.Conv2DInfo, bindingLimit: number): FilterGemm {
  const m = info.filterHeight * info.filterWidth * info.inChannels;
  const n = info.outChannels;
  const k = info.batchSize * info.outHeight * info.outWidth;
  const tile = tileFor(m, n);
  const tiles = Math.ceil(m / tile.bm) * Math.ceil(n / tile.bn);
  const maxSplits = Math.floor(Math.min(MAX_PARTIAL_BYTES, bindingLimit) / (4 * m * n));
  const want = Math.min(Math.ceil(TARGET_WORKGROUPS / tiles), Math.floor(k / MIN_K_PER_SPLIT), maxSplits);
  const chunk = Math.ceil(Math.ceil(k / BK) / Math.max(1, want)) * BK;
  return { m, n, k, tile, chunk, splits: Math.ceil(k / chunk) };
}

/** Partial (splits > 1) or final dW of one GEMM: workgroups (N tiles, M tiles, splits). */
export class FilterGemmProgram extends TiledProgram {
  readonly variableNames = ['X', 'Dy'];
  readonly shaderKey: string;

  constructor(
    private readonly g: FilterGemm,
    private readonly info: backend_util.Conv2DInfo,
  ) {
    const { m, n, tile, splits } = g;
    const shape = splits > 1 ? [splits, m, n] : info.filterShape;
    super(shape, tile, [Math.ceil(n / tile.bn), Math.ceil(m / tile.bm), splits]);
    this.shaderKey = `sdd_conv_dw_${numbersOf(this.constants())}`;
  }

  private constants(): string {
    const { m, n, k, chunk } = this.g;
    const { inChannels, filterWidth, outHeight, outWidth, inHeight, inWidth, strideHeight, strideWidth } = this.info;
    const { top, left } = this.info.padInfo;
    return `
      const M = ${m}; const N = ${n}; const K = ${k}; const ITERS = ${chunk / BK}; const CHUNK = ${chunk};
      const CI = ${inChannels}; const KW = ${filterWidth}; const OH = ${outHeight}; const OW = ${outWidth};
      const H = ${inHeight}; const W = ${inWidth}; const SH = ${strideHeight}; const SW = ${strideWidth};
      const PT = ${top}; const PL = ${left};`;
  }

  getUserCode(): string {
    return `${this.constants()}${tileDecls(this.tile, 0)}${MULTIPLY}${FILTER_MAIN}`;
  }
}

/**
 * A loads: the thread's column am of A is fixed (one filter row: tap ky, kx and channel c), its rows
 * step by NT/BM; consecutive threads read consecutive channels of x. B loads: rows of dy, along co.
 */
const FILTER_MAIN = `
      fn xAt(k : i32, ky : i32, kx : i32, c : i32) -> f32 {
        let b = k / (OH * OW);
        let r = k - b * (OH * OW);
        let oy = r / OW;
        let iy = oy * SH + ky - PT;
        let ix = (r - oy * OW) * SW + kx - PL;
        if (iy < 0 || iy >= H || ix < 0 || ix >= W) { return 0.0; }
        return X[((b * H + iy) * W + ix) * CI + c];
      }

      fn main(index : i32) {
        let tid = i32(localIndex);
        let z = i32(workgroupId.z);
        let m0 = i32(workgroupId.y) * BM;
        let n0 = i32(workgroupId.x) * BN;
        let am = tid % BM;
        let m = m0 + am;
        let c = m % CI;
        let ky = (m / CI) / KW;
        let kx = (m / CI) % KW;
        let bn = tid % BN;
        let n = n0 + bn;
        let kBase = z * CHUNK;
        let kEnd = min(K, kBase + CHUNK);
        for (var it = 0; it < ITERS; it++) {
          let k0 = kBase + it * BK;
          for (var kk = tid / BM; kk < BK; kk += NT / BM) {
            let k = k0 + kk;
            var v = 0.0;
            if (m < M && k < kEnd) { v = xAt(k, ky, kx, c); }
            As[kk * AS + am] = v;
          }
          for (var kk = tid / BN; kk < BK; kk += NT / BN) {
            let k = k0 + kk;
            var v = 0.0;
            if (n < N && k < kEnd) { v = Dy[k * N + n]; }
            Bs[kk * BS + bn] = v;
          }
          multiplyTiles(threadTm(), threadTn());
        }
        ${KEEP_UNIFORMS}
        let tm = threadTm();
        let tn = threadTn();
        for (var i = 0; i < 4; i++) {
          let mo = m0 + tm + i;
          for (var j = 0; j < 4; j++) {
            let no = n0 + tn + j;
            if (mo < M && no < N) { result[(z * M + mo) * N + no] = acc[i][j]; }
          }
        }
      }`;

/** dW [kh, kw, ci, co] = Σ over the splits of the partial sums P [splits, M·N], in split order. */
export class SplitSumProgram {
  readonly variableNames = ['P'];
  readonly size = true;
  readonly workgroupSize: [number, number, number] = [64, 1, 1];
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];
  readonly shaderKey: string;

  constructor(
    readonly outputShape: number[],
    private readonly splits: number,
  ) {
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    const n = outputShape.reduce((a, b) => a * b, 1);
    this.dispatch = [Math.ceil(n / 64), 1, 1];
    this.shaderKey = `sdd_conv_dw_sum_${splits}`;
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var s = 0.0;
          for (var z = 0; z < ${this.splits}; z++) { s += P[z * uniforms.size + index]; }
          result[index] = s;
        }
      }`;
  }
}
