/**
 * Eigenvalues of a symmetric matrix through blocked Householder tridiagonalisation (LAPACK's
 * dsytrd/dlatrd scheme, lower triangle) and implicit QL on the tridiagonal. The unblocked
 * reduction rewrites the whole trailing matrix after every column (a rank-2 update that is all
 * memory traffic at d = 2048); here `nb` columns are reduced against an implicit
 * A − V·Wᵀ − W·Vᵀ and the trailing matrix is updated once per panel by a cache-blocked product
 * (gemm.ts), which halves the passes over memory and turns half the work into tiled products.
 *
 * Storage: the lower triangle in column-major order — element (r, c), r ≥ c, at c·n + r — so a
 * column below the diagonal is contiguous (what the reflectors and the symmetric matrix–vector
 * product walk); a symmetric row-major input already is that layout.
 */
import { ntProduct, sharedF64 } from './team.js';
import { tridiagonalEigvals } from './linalg.js';

const NB = 32;

/** Eigenvalues (ascending) of symmetric n×n A (row-major; not modified). */
export function symEigvals(A: Float64Array, n: number, nb = NB): Float64Array {
  const a = sharedF64(n * n);
  a.set(A);
  const d = new Float64Array(n);
  const e = new Float64Array(n); // e[i]: element (i + 1, i) of the tridiagonal
  const V = new Float64Array(n * nb); // row r, reflector q at r·nb + q
  const W = new Float64Array(n * nb);
  const y = new Float64Array(n);
  const x = new Float64Array(n);
  for (let p = 0; p < n - 1; p += nb) {
    const b = Math.min(nb, n - 1 - p);
    V.fill(0);
    W.fill(0);
    for (let k = 0; k < b; k++) reduceColumn(a, n, nb, p + k, k, V, W, d, e, y, x);
    updateTrailing(a, n, nb, p + b, b, V, W);
  }
  d[n - 1] = a[(n - 1) * n + n - 1];
  return tridiagonalEigvals(d, e.subarray(0, Math.max(n - 1, 0)));
}

/**
 * Column i (the k-th of its panel): apply the panel's earlier reflectors to it, generate the
 * reflector that zeroes it below the subdiagonal, and compute W's column for it.
 */
function reduceColumn(
  a: Float64Array,
  n: number,
  nb: number,
  i: number,
  k: number,
  V: Float64Array,
  W: Float64Array,
  d: Float64Array,
  e: Float64Array,
  y: Float64Array,
  x: Float64Array,
): void {
  const col = i * n;
  for (let r = i; r < n; r++) {
    let s = 0;
    for (let q = 0; q < k; q++) s += V[r * nb + q] * W[i * nb + q] + W[r * nb + q] * V[i * nb + q];
    a[col + r] -= s;
  }
  d[i] = a[col + i];
  // Householder reflector H = I − τ v vᵀ with v[i+1] = 1, mapping a(i+1.., i) to (β, 0, …).
  const alpha = a[col + i + 1];
  let xnorm2 = 0;
  for (let r = i + 2; r < n; r++) xnorm2 += a[col + r] * a[col + r];
  if (xnorm2 === 0) {
    e[i] = alpha; // nothing to annihilate: H = I, W's column stays 0
    return;
  }
  const beta = -Math.sign(alpha || 1) * Math.sqrt(alpha * alpha + xnorm2);
  const tau = (beta - alpha) / beta;
  const inv = 1 / (alpha - beta);
  e[i] = beta;
  // v is kept contiguous in `x` for the O(n²) product below (V's column is strided).
  x[i + 1] = 1;
  for (let r = i + 2; r < n; r++) x[r] = a[col + r] * inv;
  for (let r = i + 1; r < n; r++) V[r * nb + k] = x[r];
  // y = A₂₂ v with A₂₂ the stored trailing matrix (lower triangle, columns contiguous).
  y.fill(0, i + 1, n);
  symvLower(a, n, i + 1, x, y);
  // Remove what the panel's earlier reflectors have already taken out of A₂₂: −V(Wᵀv) − W(Vᵀv).
  for (let q = 0; q < k; q++) {
    let t1 = 0;
    let t2 = 0;
    for (let r = i + 1; r < n; r++) {
      const vr = V[r * nb + k];
      t1 += W[r * nb + q] * vr;
      t2 += V[r * nb + q] * vr;
    }
    for (let r = i + 1; r < n; r++) y[r] -= V[r * nb + q] * t1 + W[r * nb + q] * t2;
  }
  let yv = 0;
  for (let r = i + 1; r < n; r++) {
    y[r] *= tau;
    yv += y[r] * V[r * nb + k];
  }
  const shift = -0.5 * tau * yv;
  for (let r = i + 1; r < n; r++) W[r * nb + k] = y[r] + shift * V[r * nb + k];
}

/**
 * y += A·x over rows/columns [from, n) of the column-major lower triangle. Four columns at a
 * time: each pass over rows r > c + 3 loads y[r] once for four updates and keeps four
 * independent dot-product chains, instead of one latency-bound chain per column.
 */
function symvLower(a: Float64Array, n: number, from: number, x: Float64Array, y: Float64Array): void {
  let c = from;
  for (; c + 3 < n; c += 4) {
    const o0 = c * n,
      o1 = o0 + n,
      o2 = o1 + n,
      o3 = o2 + n;
    const x0 = x[c],
      x1 = x[c + 1],
      x2 = x[c + 2],
      x3 = x[c + 3];
    // The 4×4 corner on and below the diagonal.
    let s0 = a[o0 + c] * x0 + a[o0 + c + 1] * x1 + a[o0 + c + 2] * x2 + a[o0 + c + 3] * x3;
    let s1 = a[o0 + c + 1] * x0 + a[o1 + c + 1] * x1 + a[o1 + c + 2] * x2 + a[o1 + c + 3] * x3;
    let s2 = a[o0 + c + 2] * x0 + a[o1 + c + 2] * x1 + a[o2 + c + 2] * x2 + a[o2 + c + 3] * x3;
    let s3 = a[o0 + c + 3] * x0 + a[o1 + c + 3] * x1 + a[o2 + c + 3] * x2 + a[o3 + c + 3] * x3;
    y[c + 1] += s1;
    y[c + 2] += s2;
    y[c + 3] += s3;
    s1 = 0;
    s2 = 0;
    s3 = 0;
    for (let r = c + 4; r < n; r++) {
      const v0 = a[o0 + r],
        v1 = a[o1 + r],
        v2 = a[o2 + r],
        v3 = a[o3 + r];
      const xr = x[r];
      s0 += v0 * xr;
      s1 += v1 * xr;
      s2 += v2 * xr;
      s3 += v3 * xr;
      y[r] += v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3;
    }
    y[c] += s0;
    y[c + 1] += s1;
    y[c + 2] += s2;
    y[c + 3] += s3;
  }
  for (; c < n; c++) {
    const cc = c * n;
    const vc = x[c];
    let s = a[cc + c] * vc;
    for (let r = c + 1; r < n; r++) {
      const v = a[cc + r];
      s += v * x[r];
      y[r] += v * vc;
    }
    y[c] += s;
  }
}

/** a(r, c) −= Σ_q V[r][q]·W[c][q] + W[r][q]·V[c][q] for from ≤ c ≤ r: one tiled product. */
function updateTrailing(
  a: Float64Array,
  n: number,
  nb: number,
  from: number,
  b: number,
  V: Float64Array,
  W: Float64Array,
): void {
  const m = n - from;
  if (m <= 0) return;
  const k2 = 2 * b;
  const WV = sharedF64(m * k2); // row c: [W[c] | V[c]]
  const VW = sharedF64(m * k2); // row r: [V[r] | W[r]]
  for (let r = 0; r < m; r++) {
    const src = (from + r) * nb;
    for (let q = 0; q < b; q++) {
      WV[r * k2 + q] = W[src + q];
      WV[r * k2 + b + q] = V[src + q];
      VW[r * k2 + q] = V[src + q];
      VW[r * k2 + b + q] = W[src + q];
    }
  }
  // Column-major lower: entry (r, c) at c·n + r is row c, column r of a row-major view.
  ntProduct({
    X: WV,
    Y: VW,
    C: a,
    rows: m,
    cols: m,
    kDim: k2,
    ldx: k2,
    ldy: k2,
    ldc: n,
    cOff: from * n + from,
    alpha: -1,
    part: 'upper',
  });
}
