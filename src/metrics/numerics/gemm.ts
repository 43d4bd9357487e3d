/**
 * Cache-blocked float64 products in "NT" form, C[i][j] (+)= Σ_k X[i][k]·Y[j][k], for the
 * d×d matrices FID works on. Both operands are walked along contiguous rows, a 4×4 tile is
 * computed as two 2×4 strips of 8 accumulators in locals (6 loads per 8 multiply-adds; measured
 * as fast as one strip of 16 accumulators at d = 512…1536, and bit-identical), and the k loop is cut
 * into chunks so a strip of X rows stays in L2 while Y's tiles stream through L1 — at d = 2048
 * that is ~5× the plain i-k-j loop. Triangular operands skip their zeros through `kFrom`.
 * Products are split over rows between threads by team.ts.
 */

/**
 * C[cOff + i·ldc + j] += alpha · Σ_{k<kDim} X[xOff + i·ldx + k] · Y[yOff + j·ldy + k] for i < rows,
 * j < cols (strided views, so a trailing block of a bigger matrix is a product too).
 */
export interface NtProduct {
  X: Float64Array;
  Y: Float64Array;
  C: Float64Array;
  rows: number;
  cols: number;
  kDim: number;
  ldx: number;
  ldy: number;
  ldc: number;
  xOff?: number;
  yOff?: number;
  cOff?: number;
  alpha?: number;
  /**
   * 'upper' computes only the tiles that hold entries with j ≥ i, 'lower' those with j ≤ i; a tile
   * straddling the diagonal is computed whole, so the other triangle's entries in it change too.
   */
  part?: 'all' | 'upper' | 'lower';
  /**
   * Triangular operands: the first k that can be non-zero for a tile is its first row index
   * ('row': X's row i is zero before column i) or first column index ('col': Y's row j is zero
   * before column j). Zeros below it are stored, so starting at the tile's corner is exact.
   */
  kFrom?: 'row' | 'col';
  /** Rows [rowFrom, rowTo) of C only (multiples of 4 except at the end): lets workers split the output. */
  rowFrom?: number;
  rowTo?: number;
}

const KC = 256; // k chunk: 4 rows × 256 × 8 B = 8 KB of Y per tile, L1-resident
const MC = 64; // X rows per strip: 64 × 256 × 8 B = 128 KB, L2-resident

/** Accumulates alpha·X·Yᵀ into C (see NtProduct). */
export function ntAccumulate(p: NtProduct): void {
  const { rows, cols, kDim } = p;
  const kFrom = p.kFrom;
  const upper = p.part === 'upper';
  const lower = p.part === 'lower';
  const rowFrom = p.rowFrom ?? 0;
  const rowTo = p.rowTo ?? rows;
  for (let kc = 0; kc < kDim; kc += KC) {
    const kEnd = Math.min(kc + KC, kDim);
    for (let ib = rowFrom; ib < rowTo; ib += MC) {
      const ibEnd = Math.min(ib + MC, rowTo);
      const jEnd = lower ? Math.min(cols, ibEnd) : cols;
      for (let j0 = upper ? ib - (ib % 4) : 0; j0 < jEnd; j0 += 4) {
        for (let i0 = ib; i0 < ibEnd; i0 += 4) {
          if (upper && j0 + 4 <= i0) continue;
          if (lower && j0 >= i0 + 4) continue;
          const k0 = Math.max(kc, kFrom === 'row' ? i0 : kFrom === 'col' ? j0 : 0);
          if (k0 >= kEnd) continue;
          if (i0 + 4 <= rows && j0 + 4 <= cols) tile4(p, i0, j0, k0, kEnd);
          else tileEdge(p, i0, Math.min(i0 + 4, rows), j0, Math.min(j0 + 4, cols), k0, kEnd);
        }
      }
    }
  }
}

/**
 * A full 4×4 tile of C as two 2×4 strips: every entry is still one k-ordered sum added to C once,
 * so splitting the tile changes no bits; each strip reloads Y's 4 rows (from L1).
 */
function tile4(p: NtProduct, i0: number, j0: number, k0: number, k1: number): void {
  strip2x4(p, i0, j0, k0, k1);
  strip2x4(p, i0 + 2, j0, k0, k1);
}

/** Rows i0, i0 + 1 by columns j0..j0 + 3 of C, accumulated in locals over k ∈ [k0, k1). */
function strip2x4(p: NtProduct, i0: number, j0: number, k0: number, k1: number): void {
  const { X, Y, C, ldx, ldy, ldc } = p;
  const x0 = (p.xOff ?? 0) + i0 * ldx;
  const x1 = x0 + ldx;
  const y0 = (p.yOff ?? 0) + j0 * ldy;
  const y1 = y0 + ldy;
  const y2 = y1 + ldy;
  const y3 = y2 + ldy;
  let c00 = 0;
  let c01 = 0;
  let c02 = 0;
  let c03 = 0;
  let c10 = 0;
  let c11 = 0;
  let c12 = 0;
  let c13 = 0;
  for (let k = k0; k < k1; k++) {
    const a0 = X[x0 + k];
    const a1 = X[x1 + k];
    const b0 = Y[y0 + k];
    const b1 = Y[y1 + k];
    const b2 = Y[y2 + k];
    const b3 = Y[y3 + k];
    c00 += a0 * b0;
    c01 += a0 * b1;
    c02 += a0 * b2;
    c03 += a0 * b3;
    c10 += a1 * b0;
    c11 += a1 * b1;
    c12 += a1 * b2;
    c13 += a1 * b3;
  }
  const al = p.alpha ?? 1;
  const r0 = (p.cOff ?? 0) + i0 * ldc + j0;
  const r1 = r0 + ldc;
  C[r0] += al * c00;
  C[r0 + 1] += al * c01;
  C[r0 + 2] += al * c02;
  C[r0 + 3] += al * c03;
  C[r1] += al * c10;
  C[r1 + 1] += al * c11;
  C[r1 + 2] += al * c12;
  C[r1 + 3] += al * c13;
}

/** The ragged tiles at the matrix edge (sizes not a multiple of 4). */
function tileEdge(p: NtProduct, i0: number, i1: number, j0: number, j1: number, k0: number, k1: number): void {
  const { X, Y, C, ldx, ldy, ldc } = p;
  const al = p.alpha ?? 1;
  for (let i = i0; i < i1; i++)
    for (let j = j0; j < j1; j++) {
      let s = 0;
      const xi = (p.xOff ?? 0) + i * ldx;
      const yj = (p.yOff ?? 0) + j * ldy;
      for (let k = k0; k < k1; k++) s += X[xi + k] * Y[yj + k];
      C[(p.cOff ?? 0) + i * ldc + j] += al * s;
    }
}
