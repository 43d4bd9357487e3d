/**
 * The dense kernels behind FID against plain references: the tiled NT product against a triple
 * loop (ragged sizes, strided views, triangles, triangular operands; exact to 1e-12 relative,
 * only the summation order differs), the thread team against the single-thread product (bit for
 * bit: every entry is summed by one thread in the same order), the blocked Cholesky by
 * reconstruction, and the blocked tridiagonal eigenvalues on matrices with a known spectrum.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ntAccumulate, type NtProduct } from './gemm.js';
import { ntProduct, sharedF64, teamThreads, helperStrips } from './team.js';
import { cholesky, congruence, pivotedCholesky, symEig } from './linalg.js';
import { symEigvals } from './tridiag.js';
import { Rng } from '../../util/rng.js';

const randn = (len: number, seed: number) => {
  const rng = new Rng(seed);
  return Float64Array.from({ length: len }, () => rng.normal());
};

function naive(p: NtProduct, C: Float64Array): void {
  const al = p.alpha ?? 1;
  for (let i = 0; i < p.rows; i++)
    for (let j = 0; j < p.cols; j++) {
      let s = 0;
      for (let k = 0; k < p.kDim; k++) s += p.X[(p.xOff ?? 0) + i * p.ldx + k] * p.Y[(p.yOff ?? 0) + j * p.ldy + k];
      C[(p.cOff ?? 0) + i * p.ldc + j] += al * s;
    }
}

function maxRel(a: Float64Array, b: Float64Array): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / scale;
}

test('tiled NT product equals the triple loop: ragged sizes, strided views, k chunks, alpha', () => {
  // 37 × 29 output inside a 41-wide C, k = 300 (> one 256 chunk), operands offset in bigger buffers.
  const [rows, cols, kDim, ldx, ldy, ldc] = [37, 29, 300, 310, 305, 41];
  const X = randn(5 + rows * ldx, 1);
  const Y = randn(3 + cols * ldy, 2);
  const C0 = randn(7 + rows * ldc, 3);
  const p = { X, Y, rows, cols, kDim, ldx, ldy, ldc, xOff: 5, yOff: 3, cOff: 7, alpha: -0.5 };
  const got = Float64Array.from(C0);
  ntAccumulate({ ...p, C: got });
  const want = Float64Array.from(C0);
  naive({ ...p, C: want }, want);
  assert.ok(maxRel(got, want) < 1e-12, `max rel error ${maxRel(got, want)}`);
});

test('tiled NT product: upper/lower parts cover their triangle, triangular operands skip only zeros', () => {
  const n = 45;
  const X = randn(n * n, 4);
  const Y = randn(n * n, 5);
  // X upper-triangular by rows (row i zero before column i): kFrom 'row' may skip those k.
  const Xu = X.map((v, idx) => (idx % n >= Math.floor(idx / n) ? v : 0));
  const Yu = Y.map((v, idx) => (idx % n >= Math.floor(idx / n) ? v : 0));
  const full = new Float64Array(n * n);
  naive({ X: Xu, Y: Yu, C: full, rows: n, cols: n, kDim: n, ldx: n, ldy: n, ldc: n }, full);
  for (const [part, kFrom] of [
    ['upper', 'row'],
    ['lower', 'col'],
    ['all', 'row'],
    ['all', 'col'],
  ] as const) {
    const C = new Float64Array(n * n);
    ntAccumulate({ X: Xu, Y: Yu, C, rows: n, cols: n, kDim: n, ldx: n, ldy: n, ldc: n, part, kFrom });
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        const asked = part === 'all' || (part === 'upper' ? j >= i : j <= i);
        const tileFar =
          part === 'upper'
            ? Math.floor(j / 4) < Math.floor(i / 4)
            : part === 'lower'
              ? Math.floor(j / 4) > Math.floor(i / 4)
              : false;
        if (asked)
          assert.ok(
            Math.abs(C[i * n + j] - full[i * n + j]) < 1e-12 * n,
            `${part}/${kFrom} (${i},${j}): ${C[i * n + j]} vs ${full[i * n + j]}`,
          );
        if (tileFar) assert.equal(C[i * n + j], 0, `${part} wrote (${i},${j}) outside its tiles`);
      }
  }
});

test(
  'the thread team gives the single-thread product bit for bit, and its helpers take strips',
  { skip: teamThreads() < 2 && 'one core' },
  async () => {
    const [rows, cols, kDim] = [1024, 1000, 256];
    const X = sharedF64(rows * kDim);
    X.set(randn(rows * kDim, 6));
    const Y = sharedF64(cols * kDim);
    Y.set(randn(cols * kDim, 7));
    const want = new Float64Array(rows * cols);
    const p = { X, Y, rows, cols, kDim, ldx: kDim, ldy: kDim, ldc: cols, part: 'upper' as const };
    ntAccumulate({ ...p, C: want });
    const before = helperStrips();
    let got = sharedF64(rows * cols);
    ntProduct({ ...p, C: got });
    // Helpers start in the background: give them time, then a second product shares the work.
    await new Promise((r) => setTimeout(r, 2000));
    got = sharedF64(rows * cols);
    ntProduct({ ...p, C: got });
    assert.deepEqual(got, want);
    assert.ok(helperStrips() > before, 'no helper thread took a strip');
  },
);

test('blocked Cholesky reconstructs A, zeros above the diagonal; not positive definite → null', () => {
  for (const n of [1, 5, 64, 65, 150]) {
    const G = randn(n * n, 8 + n);
    const A = new Float64Array(n * n);
    naive({ X: G, Y: G, C: A, rows: n, cols: n, kDim: n, ldx: n, ldy: n, ldc: n }, A);
    for (let i = 0; i < n; i++) A[i * n + i] += 1e-3;
    const L = cholesky(A, n, 16)!;
    const LLt = new Float64Array(n * n);
    naive({ X: L, Y: L, C: LLt, rows: n, cols: n, kDim: n, ldx: n, ldy: n, ldc: n }, LLt);
    assert.ok(maxRel(LLt, A) < 1e-13, `n=${n}: LLᵀ vs A ${maxRel(LLt, A)}`);
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) assert.equal(L[i * n + j], 0);
    // Lᵀ·B·L against the product written out.
    const B = A;
    const M = congruence(L, B, n);
    const BL = new Float64Array(n * n);
    const Lt = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) Lt[i * n + j] = L[j * n + i];
    naive({ X: B, Y: Lt, C: BL, rows: n, cols: n, kDim: n, ldx: n, ldy: n, ldc: n }, BL); // B·L
    const BLt = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) BLt[i * n + j] = BL[j * n + i];
    const want = new Float64Array(n * n);
    naive({ X: Lt, Y: BLt, C: want, rows: n, cols: n, kDim: n, ldx: n, ldy: n, ldc: n }, want); // Lᵀ·(B·L)
    assert.ok(maxRel(M, want) < 1e-12, `n=${n}: congruence ${maxRel(M, want)}`);
  }
  const indefinite = Float64Array.from([1, 2, 2, 1]);
  assert.equal(cholesky(indefinite, 2), null);
});

test('pivoted Cholesky of a rank-deficient PSD matrix finds the rank and reconstructs P·A·Pᵀ', () => {
  for (const [n, r] of [
    [40, 13],
    [130, 129],
    [64, 64],
  ] as const) {
    const G = randn(n * r, 50 + n);
    const A = new Float64Array(n * n);
    naive({ X: G, Y: G, C: A, rows: n, cols: n, kDim: r, ldx: r, ldy: r, ldc: n }, A); // G·Gᵀ, rank r
    const { L, perm, rank } = pivotedCholesky(A, n);
    assert.equal(rank, r, `n=${n}: rank`);
    const LLt = new Float64Array(n * n);
    naive({ X: L, Y: L, C: LLt, rows: n, cols: n, kDim: rank, ldx: n, ldy: n, ldc: n }, LLt);
    const PAPt = Float64Array.from({ length: n * n }, (_, idx) => A[perm[Math.floor(idx / n)] * n + perm[idx % n]]);
    assert.ok(maxRel(LLt, PAPt) < 1e-12, `n=${n}: ${maxRel(LLt, PAPt)}`);
    // Lᵀ·(P·B·Pᵀ)·L has the non-zero spectrum of A·B: compare traces (Σλ) with Tr(A·B).
    const B = A.map((v, idx) => v + (Math.floor(idx / n) === idx % n ? 1 : 0));
    const M = congruence(L, B, n, rank, perm);
    let trM = 0;
    for (let i = 0; i < rank; i++) trM += M[i * rank + i];
    let trAB = 0;
    for (let i = 0; i < n * n; i++) trAB += A[i] * B[i]; // both symmetric: Tr(AB) = Σ A∘B
    assert.ok(Math.abs(trM - trAB) < 1e-10 * trAB, `n=${n}: Tr ${trM} vs ${trAB}`);
  }
});

/** Q·diag(λ)·Qᵀ with Q a product of random Householder reflections: the spectrum is λ by construction. */
function knownSpectrum(n: number, seed: number, lambda: Float64Array): Float64Array {
  const A = new Float64Array(n * n);
  for (let i = 0; i < n; i++) A[i * n + i] = lambda[i];
  for (let h = 0; h < 3; h++) {
    const v = randn(n, seed * 10 + h);
    const vv = v.reduce((s, x) => s + x * x, 0);
    // A ← H A H, H = I − 2vvᵀ/vᵀv
    const Av = new Float64Array(n);
    for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) Av[i] += A[i * n + k] * v[k];
    const vAv = v.reduce((s, x, i) => s + x * Av[i], 0);
    const c = 2 / vv;
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) A[i * n + j] += -c * (Av[i] * v[j] + v[i] * Av[j]) + c * c * vAv * v[i] * v[j];
  }
  return A;
}

test('blocked tridiagonal eigenvalues: known spectra, several panels, ragged ends', () => {
  for (const [n, nb] of [
    [1, 32],
    [2, 32],
    [33, 32],
    [100, 8],
    [257, 32],
  ] as const) {
    const rng = new Rng(n);
    const lambda = Float64Array.from({ length: n }, (_, i) =>
      i % 7 === 0 ? 0 : rng.uniform(0, 10) - (i % 5 === 0 ? 3 : 0),
    );
    const sorted = Float64Array.from(lambda).sort();
    const got = symEigvals(knownSpectrum(n, n, lambda), n, nb);
    let err = 0;
    for (let i = 0; i < n; i++) err = Math.max(err, Math.abs(got[i] - sorted[i]));
    assert.ok(err < 1e-11, `n=${n}, nb=${nb}: max |Δλ| ${err}`);
    // And against the unblocked JAMA route (eigenvectors too) on the same matrix.
    const jama = symEig(knownSpectrum(n, n, lambda), n).values;
    for (let i = 0; i < n; i++) assert.ok(Math.abs(jama[i] - got[i]) < 1e-11);
  }
});
