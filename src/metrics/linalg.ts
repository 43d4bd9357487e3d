/**
 * Dense float64 linear algebra for the metrics (FID works on d×d covariances): symmetric
 * eigendecomposition by Householder tridiagonalisation + implicit QL (the EISPACK tred2/tql2
 * route, as in JAMA), and the few products FID needs. Matrices are row-major Float64Arrays.
 */

/** Eigenvalues (ascending) and, if asked, eigenvectors (columns of `vectors`) of symmetric A. */
export function symEig(A: Float64Array, n: number, wantVectors = true): { values: Float64Array; vectors: Float64Array | null } {
  if (!wantVectors) return { values: symEigvals(A, n), vectors: null };
  const V = Float64Array.from(A);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tred2(V, d, e, n);
  tql2(V, d, e, n, true);
  return { values: d, vectors: V };
}

/**
 * Householder reduction to tridiagonal form, accumulating the transform in V (JAMA's layout).
 * symEigvals below runs the same reduction on the transposed layout without accumulation: the
 * two differ in memory order, which is the point of having both.
 */
function tred2(V: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) d[j] = V[(n - 1) * n + j];
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]);
    if (scale === 0) {
      e[i] = d[i - 1];
      for (let j = 0; j < i; j++) {
        d[j] = V[(i - 1) * n + j];
        V[i * n + j] = 0;
        V[j * n + i] = 0;
      }
    } else {
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
    }
    d[i] = h;
  }
  // Accumulate the transformations into V.
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
          if (wantVectors) {
            for (let k = 0; k < n; k++) {
              const hk = V[k * n + i + 1];
              V[k * n + i + 1] = s * V[k * n + i] + c * hk;
              V[k * n + i] = c * V[k * n + i] - s * hk;
            }
          }
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
  // Selection sort of values (and vector columns): n is at most a few thousand.
  for (let i = 0; i < n - 1; i++) {
    let k = i;
    let p = d[i];
    for (let j = i + 1; j < n; j++) if (d[j] < p) (k = j), (p = d[j]);
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

/** C = A·B for n×n row-major matrices (i-k-j loop order for cache-friendly rows). */
export function matmul(A: Float64Array, B: Float64Array, n: number): Float64Array {
  const C = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ci = i * n;
    for (let k = 0; k < n; k++) {
      const a = A[ci + k];
      if (a === 0) continue;
      const bk = k * n;
      for (let j = 0; j < n; j++) C[ci + j] += a * B[bk + j];
    }
  }
  return C;
}

/** √A for symmetric PSD A through its eigendecomposition; negative eigenvalues clamp to 0. */
export function sqrtPsd(A: Float64Array, n: number): { root: Float64Array; clamped: number; minEig: number } {
  const { values, vectors } = symEig(A, n, true);
  const V = vectors!;
  let clamped = 0;
  const s = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (values[i] < 0) clamped++;
    s[i] = Math.sqrt(Math.max(values[i], 0));
  }
  // root = V diag(s) Vᵀ
  const VS = new Float64Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) VS[r * n + c] = V[r * n + c] * s[c];
  const root = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += VS[i * n + k] * V[j * n + k];
      root[i * n + j] = acc;
      root[j * n + i] = acc;
    }
  }
  return { root, clamped, minEig: values[0] };
}

/**
 * Eigenvalues only, of symmetric A (ascending). The Householder reduction runs on the transposed
 * lower triangle so both O(n³) inner loops walk memory contiguously — several times faster than
 * the column-walking textbook loop at n = 2048.
 */
export function symEigvals(A: Float64Array, n: number): Float64Array {
  // A is symmetric, so its storage is also its transpose: Vt[j·n + k] = V[k][j].
  const Vt = Float64Array.from(A);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  for (let j = 0; j < n; j++) d[j] = Vt[j * n + n - 1];
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]);
    if (scale === 0) {
      e[i] = d[i - 1];
      for (let j = 0; j < i; j++) {
        d[j] = Vt[j * n + i - 1];
        Vt[j * n + i] = 0;
        Vt[i * n + j] = 0;
      }
    } else {
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
        const col = j * n; // column j of the lower triangle, contiguous
        Vt[i * n + j] = f;
        g = e[j] + Vt[col + j] * f;
        for (let k = j + 1; k <= i - 1; k++) {
          const v = Vt[col + k];
          g += v * d[k];
          e[k] += v * f;
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
        const col = j * n;
        for (let k = j; k <= i - 1; k++) Vt[col + k] -= f * e[k] + g * d[k];
        d[j] = Vt[col + i - 1];
        Vt[col + i] = 0;
      }
    }
    d[i] = h;
  }
  for (let i = 0; i < n - 1; i++) Vt[i * n + n - 1] = Vt[i * n + i];
  for (let j = 0; j < n; j++) d[j] = Vt[j * n + n - 1];
  e[0] = 0;
  tql2(Vt, d, e, n, false);
  return d;
}

/** Lower Cholesky factor of symmetric A, or null when A is not (numerically) positive definite. */
export function cholesky(A: Float64Array, n: number): Float64Array | null {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      let s = A[ri + j];
      for (let k = 0; k < j; k++) s -= L[ri + k] * L[rj + k];
      if (i === j) {
        if (!(s > 0)) return null;
        L[ri + i] = Math.sqrt(s);
      } else L[ri + j] = s / L[rj + j];
    }
  }
  return L;
}

/** Lᵀ·B·L for lower-triangular L and symmetric B (result symmetrised), skipping L's zeros. */
export function congruenceLower(L: Float64Array, B: Float64Array, n: number): Float64Array {
  const T = new Float64Array(n * n); // T = B·L
  for (let i = 0; i < n; i++) {
    const ti = i * n;
    for (let k = 0; k < n; k++) {
      const a = B[ti + k];
      const lk = k * n;
      for (let j = 0; j <= k; j++) T[ti + j] += a * L[lk + j];
    }
  }
  const M = new Float64Array(n * n); // M = Lᵀ·T
  for (let k = 0; k < n; k++) {
    const lk = k * n;
    const tk = k * n;
    for (let i = 0; i <= k; i++) {
      const a = L[lk + i];
      if (a === 0) continue;
      const mi = i * n;
      for (let j = 0; j < n; j++) M[mi + j] += a * T[tk + j];
    }
  }
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      const v = 0.5 * (M[i * n + j] + M[j * n + i]);
      M[i * n + j] = v;
      M[j * n + i] = v;
    }
  return M;
}
