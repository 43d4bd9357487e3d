/**
 * Fréchet distance between Gaussians fitted to two feature sets (FID):
 *   ‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr √(Σ₁Σ₂).
 * Tr √(Σ₁Σ₂) is the sum of square roots of the eigenvalues of the symmetric PSD matrix
 * √Σ₁ Σ₂ √Σ₁ (same spectrum as Σ₁Σ₂), so no complex arithmetic is needed; eigenvalues that
 * round-off pushes below zero are clamped and counted. Two routes to the same spectrum:
 *   'eigh'      √Σ₁ from Σ₁'s eigenvectors, then eig(√Σ₁ Σ₂ √Σ₁): robust to ill-conditioned and
 *               singular Σ₁ (N ≤ d); ~13 n³ flops, unblocked. Default up to 512 dimensions.
 *   'cholesky'  Σ₁ = LLᵀ (or Σ₂ = LLᵀ when Σ₁ is singular), eig(Lᵀ Σ₂ L): ~2 n³ flops in tiled
 *               products on both cores (team.ts) plus a blocked tridiagonal reduction
 *               (tridiag.ts); the default above 512 dimensions (2048-d Inception statistics).
 *   'pivoted'   Σ₁ ≈ LLᵀ by pivoted Cholesky (L: d × rank), eig(Lᵀ Σ₂ L) of rank × rank: what
 *               'cholesky' falls back to when both covariances are singular (N ≤ d on both sides).
 * On a covariance with condition number ~1e11 the Cholesky route drifts ~1e-6 relative where the
 * eigenvector route stays ~1e-7 from scipy: hence the split. `route` in the result says which
 * ran. pytorch-fid's retry (add eps·I to both covariances when its sqrtm fails) has no failure
 * to react to here; `offset` applies it on request, and results say whether it was used.
 */
import { cholesky, congruence, pivotedCholesky, sqrtPsd } from './numerics/linalg.js';
import { symEigvals } from './numerics/tridiag.js';
import { gemmNT } from './numerics/team.js';
import { FeatureStats } from './stats.js';

export interface FidResult {
  fid: number;
  mean_term: number;
  trace_sqrt: number;
  /** Eigenvalues clamped to 0: of Σ₁ (for √Σ₁) and of √Σ₁Σ₂√Σ₁. */
  clamped: number;
  offset: number;
  route: FidRoute;
  dims: number;
}

export type FidRoute = 'eigh' | 'cholesky' | 'pivoted';

export function frechetDistance(
  mu1: Float64Array,
  s1: Float64Array,
  mu2: Float64Array,
  s2: Float64Array,
  opts: { offset?: number; route?: FidRoute } = {},
): FidResult {
  const d = mu1.length;
  if (mu2.length !== d || s1.length !== d * d || s2.length !== d * d) {
    throw new RangeError(`shapes differ: mu ${d} vs ${mu2.length}, sigma ${s1.length} vs ${s2.length}`);
  }
  const offset = opts.offset ?? 0;
  const a = offset ? addDiag(s1, d, offset) : s1;
  const b = offset ? addDiag(s2, d, offset) : s2;
  let meanTerm = 0;
  for (let i = 0; i < d; i++) meanTerm += (mu1[i] - mu2[i]) ** 2;
  const spectrum = middleMatrix(a, b, d, opts.route ?? (d > 512 ? 'cholesky' : 'eigh'));
  const { traceSqrt, clampedM } = traceOfSqrt(symEigvals(spectrum.m, spectrum.k));
  const { route, clamped } = spectrum;
  let tr = 0;
  for (let i = 0; i < d; i++) tr += a[i * d + i] + b[i * d + i];
  return {
    fid: meanTerm + tr - 2 * traceSqrt,
    mean_term: meanTerm,
    trace_sqrt: traceSqrt,
    clamped: clamped + clampedM,
    offset,
    dims: d,
    route,
  };
}

/** A symmetric matrix with the spectrum of Σ₁Σ₂ (k × k), by the route asked for or its fallback. */
function middleMatrix(
  a: Float64Array,
  b: Float64Array,
  d: number,
  wanted: FidRoute,
): { m: Float64Array; k: number; route: FidRoute; clamped: number } {
  // Σ₁Σ₂ and Σ₂Σ₁ share their spectrum, so either covariance may be the factored one: a
  // rank-deficient side (fewer samples than dimensions) does not force a slower route; with both
  // singular, a pivoted Cholesky of Σ₁ keeps the work in tiled products.
  let route: FidRoute = wanted;
  let L = wanted === 'cholesky' ? cholesky(a, d) : null;
  let other = b;
  if (wanted === 'cholesky' && !L) {
    L = cholesky(b, d);
    other = a;
    if (!L) route = 'pivoted';
  }
  if (L) return { m: congruence(L, other, d), k: d, route, clamped: 0 };
  if (route === 'pivoted') {
    const pc = pivotedCholesky(a, d);
    // m is rank × rank: the rank of Σ₁.
    return { m: congruence(pc.L, b, d, pc.rank, pc.perm), k: pc.rank, route, clamped: 0 };
  }
  const sq = sqrtPsd(a, d);
  // Both factors are symmetric, so row j of either is its column j: two NT products.
  const rb = new Float64Array(d * d);
  gemmNT(sq.root, b, rb, d);
  const m = new Float64Array(d * d);
  gemmNT(rb, sq.root, m, d);
  symmetrize(m, d);
  return { m, k: d, route, clamped: sq.clamped };
}

/** Σ √λ over the eigenvalues, with those round-off pushed below zero clamped and counted. */
function traceOfSqrt(values: Iterable<number>): { traceSqrt: number; clampedM: number } {
  let traceSqrt = 0;
  let clampedM = 0;
  for (const v of values) {
    if (v < 0) clampedM++;
    traceSqrt += Math.sqrt(Math.max(v, 0));
  }
  return { traceSqrt, clampedM };
}

function addDiag(s: Float64Array, d: number, eps: number): Float64Array {
  const out = Float64Array.from(s);
  for (let i = 0; i < d; i++) out[i * d + i] += eps;
  return out;
}

/** Round-off makes products of symmetric matrices slightly asymmetric; average it away. */
function symmetrize(m: Float64Array, d: number): void {
  for (let i = 0; i < d; i++) {
    for (let j = i + 1; j < d; j++) {
      const v = 0.5 * (m[i * d + j] + m[j * d + i]);
      m[i * d + j] = v;
      m[j * d + i] = v;
    }
  }
}

/** FID of two feature sets given row-major [n, d] features. */
export function fidFromFeatures(
  f1: ArrayLike<number>,
  n1: number,
  f2: ArrayLike<number>,
  n2: number,
  d: number,
  rows1?: Int32Array,
  rows2?: Int32Array,
): number {
  const stats = (f: ArrayLike<number>, n: number, rows?: Int32Array) => {
    const st = new FeatureStats(d);
    const count = rows ? rows.length : n;
    const batch = new Float64Array(Math.min(count, 256) * d);
    for (let r0 = 0; r0 < count; r0 += 256) {
      const b = Math.min(256, count - r0);
      for (let r = 0; r < b; r++) {
        const i = rows ? rows[r0 + r] : r0 + r;
        for (let k = 0; k < d; k++) batch[r * d + k] = f[i * d + k];
      }
      st.add(batch.subarray(0, b * d), b);
    }
    return st;
  };
  const a = stats(f1, n1, rows1);
  const b = stats(f2, n2, rows2);
  return frechetDistance(a.mean(), a.covariance(), b.mean(), b.covariance()).fid;
}
