/**
 * Kernel Inception Distance: unbiased MMD² with the polynomial kernel k(x, y) = (x·y/d + 1)³,
 * averaged over `subsets` random subsets of `subsetSize` from each set (seeded), mean ± std —
 * torch-fidelity's definition. Refuses sets smaller than the subset size.
 *
 * Subset size rule (`kidSubsetSize`): min(1000, ⌊n/2⌋) for n = the smaller set. torch-fidelity's
 * 1000 needs n ≥ 1000 and is then, at n close to 1000, nearly the whole set every time; at the
 * benchmark's m = 100 the old min(n, 1000) made every subset the full set, so the "std" was
 * round-off (~1e-12). Half the set makes the subsets differ. When the subsets cannot differ
 * (subset size = both set sizes, or one subset) `kid_std` is null, never ~0. `kid_std` is the
 * spread of the subset estimates (torch-fidelity's), not a confidence interval: reports use the
 * item bootstrap for KID's interval.
 */
import { Rng } from '../util/rng.js';

export interface KidResult {
  kid_mean: number;
  /** Spread over subsets; null when every subset is the same set (nothing to spread). */
  kid_std: number | null;
  subsets: number;
  subset_size: number;
  seed: number;
}

export function kernelInceptionDistance(
  f1: Float64Array | Float32Array,
  n1: number,
  f2: Float64Array | Float32Array,
  n2: number,
  d: number,
  opts: { subsets?: number; subsetSize?: number; seed?: number } = {},
): KidResult {
  const subsets = opts.subsets ?? 100;
  const m = opts.subsetSize ?? kidSubsetSize(n1, n2);
  const seed = opts.seed ?? 0;
  if (m < 2)
    throw new RangeError(`KID: subset size ${m} is below 2 (sets of ${n1} and ${n2}); the unbiased MMD² needs pairs`);
  if (n1 < m || n2 < m)
    throw new RangeError(`KID: subset size ${m} exceeds the sample count (${n1} and ${n2}); lower kid subset size`);
  const values = kidSubsets(n1, n2, m, subsets, seed).map(([a, b]) => mmd2(f1, a, f2, b, d));
  const mean = values.reduce((x, y) => x + y, 0) / values.length;
  // Population std (ddof 0), as torch-fidelity's np.std; none when the subsets are all the same.
  const identical = subsets < 2 || (m === n1 && m === n2);
  const std = identical ? null : Math.sqrt(values.reduce((x, y) => x + (y - mean) ** 2, 0) / values.length);
  return { kid_mean: mean, kid_std: std, subsets, subset_size: m, seed };
}

/** The documented default subset size: min(1000, ⌊min(n1, n2)/2⌋) (see the file comment). */
export function kidSubsetSize(n1: number, n2: number): number {
  return Math.min(1000, Math.floor(Math.min(n1, n2) / 2));
}

/** The seeded (set 1, set 2) index subsets KID averages over, in order (exported for reference tests). */
export function kidSubsets(
  n1: number,
  n2: number,
  m: number,
  subsets: number,
  seed: number,
): Array<[Int32Array, Int32Array]> {
  const rng = new Rng(seed);
  const out: Array<[Int32Array, Int32Array]> = [];
  for (let s = 0; s < subsets; s++) {
    const a = choose(rng, n1, m);
    out.push([a, choose(rng, n2, m)]);
  }
  return out;
}

/** m distinct indices of 0..n−1 (partial Fisher–Yates). */
function choose(rng: Rng, n: number, m: number): Int32Array {
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < m; i++) {
    const j = i + rng.int(n - i);
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  return idx.slice(0, m);
}

function kernel(x: ArrayLike<number>, i: number, y: ArrayLike<number>, j: number, d: number): number {
  let dot = 0;
  for (let k = 0; k < d; k++) dot += x[i * d + k] * y[j * d + k];
  return (dot / d + 1) ** 3;
}

/** Unbiased MMD²: off-diagonal means of Kxx and Kyy minus twice the mean of Kxy. */
export function mmd2(x: ArrayLike<number>, a: Int32Array, y: ArrayLike<number>, b: Int32Array, d: number): number {
  const m = a.length;
  let kxx = 0;
  let kyy = 0;
  let kxy = 0;
  for (let i = 0; i < m; i++) {
    for (let j = i + 1; j < m; j++) {
      kxx += kernel(x, a[i], x, a[j], d);
      kyy += kernel(y, b[i], y, b[j], d);
    }
    for (let j = 0; j < m; j++) kxy += kernel(x, a[i], y, b[j], d);
  }
  return (2 * kxx) / (m * (m - 1)) + (2 * kyy) / (m * (m - 1)) - (2 * kxy) / (m * m);
}

/** Kernel matrices of two feature sets (N rows each): the inputs of `mmd2Rows`. */
export interface KernelMatrices {
  n: number;
  xx: Float64Array;
  yy: Float64Array;
  xy: Float64Array;
}

export function kernelMatrices(x: ArrayLike<number>, y: ArrayLike<number>, n: number, d: number): KernelMatrices {
  const xx = new Float64Array(n * n);
  const yy = new Float64Array(n * n);
  const xy = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      xx[i * n + j] = xx[j * n + i] = kernel(x, i, x, j, d);
      yy[i * n + j] = yy[j * n + i] = kernel(y, i, y, j, d);
    }
    for (let j = 0; j < n; j++) xy[i * n + j] = kernel(x, i, y, j, d);
  }
  return { n, xx, yy, xy };
}

/**
 * `mmd2(x, rows, y, rows, d)` from precomputed kernels: O(m²) lookups instead of O(m²·d) products,
 * which is what makes a bootstrap over rows affordable (regression reports).
 */
export function mmd2Rows(k: KernelMatrices, rows: Int32Array): number {
  const m = rows.length;
  const n = k.n;
  let kxx = 0;
  let kyy = 0;
  let kxy = 0;
  for (let i = 0; i < m; i++) {
    const ri = rows[i] * n;
    for (let j = i + 1; j < m; j++) {
      kxx += k.xx[ri + rows[j]];
      kyy += k.yy[ri + rows[j]];
    }
    for (let j = 0; j < m; j++) kxy += k.xy[ri + rows[j]];
  }
  return (2 * kxx) / (m * (m - 1)) + (2 * kyy) / (m * (m - 1)) - (2 * kxy) / (m * m);
}
