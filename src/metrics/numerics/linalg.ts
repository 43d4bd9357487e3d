/**
 * Dense float64 linear algebra for the metrics (FID works on d×d covariances): symmetric
 * eigendecomposition with vectors by Householder tridiagonalisation + implicit QL (the EISPACK
 * tred2/tql2 route, as in JAMA), QL for a tridiagonal's eigenvalues, blocked and pivoted
 * Cholesky, and the congruence Lᵀ·B·L. Matrices are row-major Float64Arrays.
 */
import { gemmNT, ntProduct, sharedF64 } from './team.js';

/** Eigenvalues (ascending) and, if asked, eigenvectors (columns of `vectors`) of symmetric A. */
export function symEig(A: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const V = Float64Array.from(A);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tred2(V, d, e, n);
  tql2(V, d, e, n, true);
  return { values: d, vectors: V };
}

/**
 * Householder reduction to tridiagonal form, accumulating the transform in V (JAMA's layout).
 * Eigenvalues alone take the blocked reduction in tridiag.ts instead. The phases are JAMA's:
 * reflect rows n − 1 … 1 (one reflector a row), then accumulate the reflectors into V.
 */
function tred2(V: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) d[j] = V[(n - 1) * n + j];
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]);
    if (scale === 0) {
      // Row i is already zero left of the diagonal: no reflector (h = 0).
      e[i] = d[i - 1];
      for (let j = 0; j < i; j++) {
        d[j] = V[(i - 1) * n + j];
        V[i * n + j] = 0;
        V[j * n + i] = 0;
      }
      d[i] = 0;
    } else d[i] = householderRow(V, d, e, n, i, scale);
  }
  accumulateReflectors(V, d, e, n);
}

/**
 * One step of tred2: the Householder reflector that zeroes row i left of its subdiagonal (held
 * scaled in d[0..i)), applied to the leading i × i block of V. Returns h = ‖u‖²/2, kept in d[i].
 */
function householderRow(
  V: Float64Array,
  d: Float64Array,
  e: Float64Array,
  n: number,
  i: number,
  scale: number,
): number {
  let h = 0;
  for (let k = 0; k < i; k++) {
    d[k] /= scale;
    h += d[k] * d[k];
  }
  let f = d[i - 1];
  let g = Math.sqrt(h);
  if (f > 0) g = -g;
  e[i] = scale * g;
  h -= f * g;
  d[i - 1] = f - g;
  for (let j = 0; j < i; j++) e[j] = 0;
  for (let j = 0; j < i; j++) {
    f = d[j];
    V[j * n + i] = f;
    g = e[j] + V[j * n + j] * f;
    for (let k = j + 1; k <= i - 1; k++) {
      g += V[k * n + j] * d[k];
      e[k] += V[k * n + j] * f;
    }
    e[j] = g;
  }
  f = 0;
  for (let j = 0; j < i; j++) {
    e[j] /= h;
    f += e[j] * d[j];
  }
  const hh = f / (h + h);
  for (let j = 0; j < i; j++) e[j] -= hh * d[j];
  for (let j = 0; j < i; j++) {
    f = d[j];
    g = e[j];
    for (let k = j; k <= i - 1; k++) V[k * n + j] -= f * e[k] + g * d[k];
    d[j] = V[(i - 1) * n + j];
    V[i * n + j] = 0;
  }
  return h;
}

/** The last phase of tred2: V becomes the product of the reflectors, d the diagonal. */
function accumulateReflectors(V: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let i = 0; i < n - 1; i++) {
    V[(n - 1) * n + i] = V[i * n + i];
    V[i * n + i] = 1;
    const h = d[i + 1];
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[k * n + i + 1] / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[k * n + i + 1] * V[k * n + j];
        for (let k = 0; k <= i; k++) V[k * n + j] -= g * d[k];
      }
    }
    for (let k = 0; k <= i; k++) V[k * n + i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[(n - 1) * n + j];
    V[(n - 1) * n + j] = 0;
  }
  V[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
}

/** Implicit QL on the tridiagonal (d, e); sorts ascending. */
function tql2(V: Float64Array, d: Float64Array, e: Float64Array, n: number, wantVectors: boolean): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n && Math.abs(e[m]) > eps * tst1) m++;
    if (m > l) {
      for (let iter = 0; ; iter++) {
        if (iter > 60) throw new Error('symEig: no convergence');
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          if (wantVectors) rotateColumns(V, n, i, c, s);
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
        if (!(Math.abs(e[l]) > eps * tst1)) break;
      }
    }
    d[l] += f;
    e[l] = 0;
  }
  sortAscending(V, d, n, wantVectors);
}

/** The Givens rotation of one QL sweep step applied to columns i and i + 1 of V. */
function rotateColumns(V: Float64Array, n: number, i: number, c: number, s: number): void {
  for (let k = 0; k < n; k++) {
    const hk = V[k * n + i + 1];
    V[k * n + i + 1] = s * V[k * n + i] + c * hk;
    V[k * n + i] = c * V[k * n + i] - s * hk;
  }
}

/** Selection sort of values (and vector columns): n is at most a few thousand. */
function sortAscending(V: Float64Array, d: Float64Array, n: number, wantVectors: boolean): void {
  for (let i = 0; i < n - 1; i++) {
    let k = i;
    let p = d[i];
    for (let j = i + 1; j < n; j++) if (d[j] < p) ((k = j), (p = d[j]));
    if (k !== i) {
      d[k] = d[i];
      d[i] = p;
      if (wantVectors) {
        for (let j = 0; j < n; j++) {
          const t = V[j * n + i];
          V[j * n + i] = V[j * n + k];
          V[j * n + k] = t;
        }
      }
    }
  }
}

/** Eigenvalues (ascending) of the symmetric tridiagonal matrix with diagonal d, subdiagonal sub (length n − 1). */
export function tridiagonalEigvals(d: Float64Array, sub: Float64Array): Float64Array {
  const n = d.length;
  const values = Float64Array.from(d);
  const e = new Float64Array(n); // tql2's convention: e[i] couples i − 1 and i
  for (let i = 1; i < n; i++) e[i] = sub[i - 1];
  tql2(new Float64Array(0), values, e, n, false);
  return values;
}

/** √A for symmetric PSD A through its eigendecomposition; negative eigenvalues clamp to 0. */
export function sqrtPsd(A: Float64Array, n: number): { root: Float64Array; clamped: number; minEig: number } {
  const { values, vectors: V } = symEig(A, n);
  let clamped = 0;
  const s = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (values[i] < 0) clamped++;
    s[i] = Math.sqrt(Math.max(values[i], 0));
  }
  // root = (V diag(s))·Vᵀ
  const VS = new Float64Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) VS[r * n + c] = V[r * n + c] * s[c];
  const root = new Float64Array(n * n);
  gemmNT(VS, V, root, n);
  return { root, clamped, minEig: values[0] };
}

/**
 * Lower Cholesky factor of symmetric A (zeros above the diagonal), or null when A is not
 * (numerically) positive definite. Right-looking and blocked: each panel of NB columns is
 * factored and solved row by row, then the trailing lower triangle takes one tiled product
 * A₂₂ −= L₂₁·L₂₁ᵀ (gemm.ts) — the O(n³) part, ~5× the dot-product loop at d = 2048.
 */
export function cholesky(A: Float64Array, n: number, nb = 64): Float64Array | null {
  const L = sharedF64(n * n);
  L.set(A);
  for (let p = 0; p < n; p += nb) {
    const e = Math.min(p + nb, n);
    for (let i = p; i < n; i++) {
      const ri = i * n;
      for (let j = p; j <= Math.min(i, e - 1); j++) {
        const rj = j * n;
        let s = L[ri + j];
        for (let k = p; k < j; k++) s -= L[ri + k] * L[rj + k];
        if (i === j) {
          if (!(s > 0)) return null;
          L[ri + i] = Math.sqrt(s);
        } else L[ri + j] = s / L[rj + j];
      }
    }
    const m = n - e;
    if (m > 0)
      ntProduct({
        X: L,
        Y: L,
        C: L,
        rows: m,
        cols: m,
        kDim: e - p,
        ldx: n,
        ldy: n,
        ldc: n,
        xOff: e * n + p,
        yOff: e * n + p,
        cOff: e * n + e,
        alpha: -1,
        part: 'lower',
      });
  }
  for (let i = 0; i < n; i++) L.fill(0, i * n + i + 1, (i + 1) * n);
  return L;
}

/**
 * Pivoted Cholesky of a symmetric positive semidefinite A (LAPACK dpstrf's rule): P·A·Pᵀ ≈ L·Lᵀ
 * with L lower-trapezoidal, n × rank, stopping when every remaining pivot is ≤ n·ε·max diag(A).
 * What it drops is round-off-sized, so it factors a singular covariance (N ≤ d) exactly enough.
 * Returns L row-major n × n (columns ≥ rank zero) in pivoted order and the permutation.
 */
export function pivotedCholesky(A: Float64Array, n: number): { L: Float64Array; perm: Int32Array; rank: number } {
  const L = sharedF64(n * n);
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  const diag = new Float64Array(n);
  let maxDiag = 0;
  for (let i = 0; i < n; i++) maxDiag = Math.max(maxDiag, (diag[i] = A[i * n + i]));
  const tol = n * 2 ** -52 * maxDiag;
  let rank = 0;
  for (let k = 0; k < n; k++) {
    let j = k;
    for (let i = k + 1; i < n; i++) if (diag[i] > diag[j]) j = i;
    if (!(diag[j] > tol)) break;
    if (j !== k) {
      [perm[j], perm[k]] = [perm[k], perm[j]];
      [diag[j], diag[k]] = [diag[k], diag[j]];
      for (let p = 0; p < k; p++) [L[j * n + p], L[k * n + p]] = [L[k * n + p], L[j * n + p]];
    }
    const lkk = Math.sqrt(diag[k]);
    L[k * n + k] = lkk;
    const pk = perm[k] * n;
    for (let i = k + 1; i < n; i++) {
      let s = A[pk + perm[i]];
      for (let p = 0; p < k; p++) s -= L[i * n + p] * L[k * n + p];
      const v = s / lkk;
      L[i * n + k] = v;
      diag[i] -= v * v;
    }
    rank = k + 1;
  }
  return { L, perm, rank };
}

/**
 * Lᵀ·(P·B·Pᵀ)·L for symmetric B and a lower-trapezoidal n × rank factor L (columns ≥ rank unused):
 * a Cholesky factor (rank n, no permutation) or pivotedCholesky's (its rank and permutation). Two
 * tiled products over rows: Tᵀ = Lᵀ·B' (row p of Lᵀ is zero before column p), then the upper
 * triangle of Tᵀ·L (column q of L is zero above row q), mirrored; ~⅔ n³ multiply-adds at full
 * rank. The spectrum is the non-zero spectrum of (P·A·Pᵀ)·B' for A ≈ PᵀLLᵀP.
 */
export function congruence(L: Float64Array, B: Float64Array, n: number, rank = n, perm?: Int32Array): Float64Array {
  const Lt = sharedF64(rank * n);
  for (let i = 0; i < n; i++) for (let p = 0; p < Math.min(rank, i + 1); p++) Lt[p * n + i] = L[i * n + p];
  const Bp = sharedF64(n * n);
  if (perm) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) Bp[i * n + j] = B[perm[i] * n + perm[j]];
  else Bp.set(B);
  const Tt = sharedF64(rank * n); // (B'·L)ᵀ = Lᵀ·B'
  ntProduct({ X: Lt, Y: Bp, C: Tt, rows: rank, cols: n, kDim: n, ldx: n, ldy: n, ldc: n, kFrom: 'row' });
  const M = sharedF64(rank * rank);
  ntProduct({
    X: Tt,
    Y: Lt,
    C: M,
    rows: rank,
    cols: rank,
    kDim: n,
    ldx: n,
    ldy: n,
    ldc: rank,
    part: 'upper',
    kFrom: 'col',
  });
  for (let i = 0; i < rank; i++) for (let j = i + 1; j < rank; j++) M[j * rank + i] = M[i * rank + j];
  return M;
}
