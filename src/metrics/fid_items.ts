/**
 * FID of resamples of paired items (edited vs original image i), the item bootstrap's hot loop.
 * With A, B the centred m × d rows of a resample, Σ₁ = AᵀA/(m−1) and Σ₂ = BᵀB/(m−1), the nonzero
 * spectrum of Σ₁Σ₂ is that of C·Cᵀ/(m−1)² with C = ABᵀ (m × m), so Tr √(Σ₁Σ₂) is C's nuclear
 * norm. Every term — C, the traces, ‖μ₁ − μ₂‖² — follows from the three Gram matrices XXᵀ, YYᵀ,
 * XYᵀ of the run's n items, made once: a resample then costs an m × m eigenproblem and no pass
 * over the d-dimensional features (≈ 3 ms at m = 100 where fidFromFeatures takes ≈ 30 ms at
 * d = 128). The same precompute-once idea as KID's kernelMatrices/mmd2Rows. Exact up to
 * round-off (metrics.test.ts checks it against fidFromFeatures and SciPy). When m > d the d × d
 * route is the cheaper one and fidFromFeatures runs instead.
 */
import { fidFromFeatures } from './fid.js';
import { symEigvals } from './numerics/tridiag.js';
import { bootstrap, type Interval } from './bootstrap.js';
import { Rng } from '../util/rng.js';

export interface FidGram {
  n: number;
  d: number;
  xx: Float64Array;
  yy: Float64Array;
  xy: Float64Array;
  f1: ArrayLike<number>;
  f2: ArrayLike<number>;
}

/** Gram matrices of two paired feature sets of n rows (f1 row i pairs with f2 row i). */
export function fidGram(f1: ArrayLike<number>, f2: ArrayLike<number>, n: number, d: number): FidGram {
  if (f1.length !== n * d || f2.length !== n * d)
    throw new RangeError(`expected two sets of ${n}×${d} features, got ${f1.length} and ${f2.length} values`);
  const xx = new Float64Array(n * n);
  const yy = new Float64Array(n * n);
  const xy = new Float64Array(n * n);
  const dot = (u: ArrayLike<number>, i: number, v: ArrayLike<number>, j: number) => {
    let s = 0;
    for (let k = 0; k < d; k++) s += u[i * d + k] * v[j * d + k];
    return s;
  };
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      xx[i * n + j] = xx[j * n + i] = dot(f1, i, f1, j);
      yy[i * n + j] = yy[j * n + i] = dot(f2, i, f2, j);
    }
    for (let j = 0; j < n; j++) xy[i * n + j] = dot(f1, i, f2, j);
  }
  return { n, d, xx, yy, xy, f1, f2 };
}

/** FID between rows `idx` of the first set and the same rows of the second (repeats allowed). */
export function fidOfRows(g: FidGram, idx: Int32Array): number {
  const m = idx.length;
  const { n, d } = g;
  if (m < 2) throw new RangeError(`FID needs at least 2 items, have ${m}`);
  if (m > d) return fidFromFeatures(g.f1, m, g.f2, m, d, idx, idx);
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  let trx = 0;
  let try_ = 0;
  const row = new Float64Array(m); // Σ_j x_i·y_j
  const col = new Float64Array(m); // Σ_i x_i·y_j
  const C = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    const ri = idx[i] * n;
    trx += g.xx[ri + idx[i]];
    try_ += g.yy[ri + idx[i]];
    for (let j = 0; j < m; j++) {
      const c = idx[j];
      sxx += g.xx[ri + c];
      syy += g.yy[ri + c];
      const v = g.xy[ri + c];
      C[i * m + j] = v;
      row[i] += v;
      col[j] += v;
      sxy += v;
    }
  }
  const [mm, mn, nn] = [sxx / (m * m), sxy / (m * m), syy / (m * m)]; // μ·μ, μ·ν, ν·ν
  // C = (x_i − μ)·(y_j − ν) = x_i·y_j − x_i·ν − μ·y_j + μ·ν.
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) C[i * m + j] += mn - row[i] / m - col[j] / m;
  const G = new Float64Array(m * m);
  for (let i = 0; i < m; i++)
    for (let j = i; j < m; j++) {
      let s = 0;
      for (let k = 0; k < m; k++) s += C[i * m + k] * C[j * m + k];
      G[i * m + j] = G[j * m + i] = s;
    }
  let nuclear = 0;
  for (const v of symEigvals(G, m, 8)) nuclear += Math.sqrt(Math.max(0, v));
  const traces = trx - m * mm + (try_ - m * nn);
  // Round-off can take a near-identical pair a hair below 0: FID is a squared distance.
  return Math.max(0, mm + nn - 2 * mn + (traces - 2 * nuclear) / (m - 1));
}

/**
 * Percentile bootstrap of FID from cached features. `paired` (edited vs original images of the
 * same items) resamples item indices once for both sets, as regression reports need, each resample
 * from the items' Gram matrices (fidOfRows: no d × d covariance per resample); otherwise each set
 * is resampled on its own.
 */
export function fidBootstrap(
  f1: ArrayLike<number>,
  n1: number,
  f2: ArrayLike<number>,
  n2: number,
  d: number,
  opts: { resamples?: number; level?: number; seed?: number; paired?: boolean } = {},
): Interval {
  const paired = opts.paired ?? n1 === n2;
  if (paired && n1 !== n2) throw new RangeError(`paired FID bootstrap needs equal set sizes (${n1} vs ${n2})`);
  const rng = new Rng((opts.seed ?? 0) + 7919);
  const gram = paired && n1 >= 2 ? fidGram(f1, f2, n1, d) : null;
  return bootstrap(
    n1,
    (idx) => {
      // Paired: every resample (the point estimate's identity one too) from the Gram matrices.
      if (gram) return fidOfRows(gram, idx);
      // bootstrap() hands the identity permutation for the point estimate.
      if (idx.every((v, i) => v === i)) return fidFromFeatures(f1, n1, f2, n2, d);
      return fidFromFeatures(
        f1,
        n1,
        f2,
        n2,
        d,
        idx,
        Int32Array.from({ length: n2 }, () => rng.int(n2)),
      );
    },
    { resamples: opts.resamples ?? 200, level: opts.level, seed: opts.seed },
  );
}
