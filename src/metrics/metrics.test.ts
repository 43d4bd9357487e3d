/**
 * FID, KID and their statistics against known identities and against reference values that
 * test/fixtures/metrics/make_fixtures.py computed with numpy/scipy (pytorch-fid's formula and
 * torch-fidelity's eigenvalue route), at 64, 512 and 2048 dimensions. Tolerances: FID 1e-6
 * relative (the references' own bar), means/covariance traces 1e-12 relative, MMD² 1e-9 relative.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { requirePython } from '../util/python.js';
import { FeatureStats } from './stats.js';
import { fidFromFeatures, frechetDistance } from './fid.js';
import { kernelInceptionDistance, kernelMatrices, kidSubsetSize, kidSubsets, mmd2, mmd2Rows } from './kid.js';
import { readNpz, writeNpz } from './npy.js';
import { fidBootstrap, fidGram, fidOfRows } from './fid_items.js';
import { PROJECT_ROOT } from '../util/env.js';
import { tmp } from '../../test/helpers.js';

interface Case {
  name: string;
  d: number;
  n1: number;
  n2: number;
  s1: number;
  s2: number;
  noise: number;
  cov_min_eig: number;
  cov2_min_eig: number;
  fid_pytorch_fid: number;
  fid_eigvals: number;
  mean_sum: [number, number];
  cov_trace: [number, number];
  mmd2_first_m: number;
  m: number;
}
const fixtures = JSON.parse(readFileSync(join(PROJECT_ROOT, 'test/fixtures/metrics/fid_kid.json'), 'utf-8')) as {
  cases: Case[];
};

/** The fixture script's closed-form features (same formula, float64). */
function features(n: number, d: number, s: number, noise = 0): Float64Array {
  const x = new Float64Array(n * d);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++) {
      let v =
        Math.sin(0.0037 * (i + 1) * (j + 1) + 1.7 * s + 0.13 * j) * (1 + 0.5 * Math.cos(0.7 * j + s)) +
        0.2 * Math.sin(1.3 * i + 0.011 * j * j + s);
      if (noise) {
        const h = Math.sin(i * 12.9898 + j * 78.233 + s) * 43758.5453;
        v += noise * (h - Math.floor(h));
      }
      x[i * d + j] = v;
    }
  return x;
}

function stats(x: Float64Array, n: number, d: number, batch = 97): FeatureStats {
  const st = new FeatureStats(d);
  for (let i = 0; i < n; i += batch) {
    const rows = Math.min(batch, n - i);
    st.add(x.subarray(i * d, (i + rows) * d), rows);
  }
  return st;
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

test('FID identities: equal inputs give 0; equal covariances give ‖Δμ‖²', () => {
  const d = 32;
  const x = features(200, d, 9);
  const st = stats(x, 200, d);
  const mu = st.mean();
  const cov = st.covariance();
  const same = frechetDistance(mu, cov, mu, cov);
  let trace = 0;
  for (let i = 0; i < d; i++) trace += cov[i * d + i];
  // Square roots of near-zero eigenvalues carry ~√ε·λmax round-off each: the bar is the
  // references' own 1e-6, relative to the total variance.
  assert.ok(Math.abs(same.fid) < 1e-6 * trace, `FID(P, P) = ${same.fid} (trace ${trace})`);
  const mu2 = mu.map((v, i) => v + 0.1 * Math.sin(i));
  let expected = 0;
  for (let i = 0; i < d; i++) expected += (0.1 * Math.sin(i)) ** 2;
  const shifted = frechetDistance(mu, cov, mu2, cov).fid;
  assert.ok(Math.abs(shifted - expected) < 1e-6 * trace, `${shifted} vs ‖Δμ‖² = ${expected}`);
});

for (const c of fixtures.cases) {
  test(`FID matches pytorch-fid (scipy sqrtm) within 1e-6: ${c.name} (d=${c.d}, n=${c.n1}/${c.n2})`, () => {
    const a = stats(features(c.n1, c.d, c.s1, c.noise), c.n1, c.d);
    const b = stats(features(c.n2, c.d, c.s2, c.noise), c.n2, c.d);
    const [ma, mb] = [a.mean(), b.mean()];
    const [ca, cb] = [a.covariance(), b.covariance()];
    assert.ok(
      rel(
        ma.reduce((s, v) => s + v, 0),
        c.mean_sum[0],
      ) < 1e-10,
    );
    let tr = 0;
    for (let i = 0; i < c.d; i++) tr += ca[i * c.d + i];
    assert.ok(rel(tr, c.cov_trace[0]) < 1e-12, `trace ${tr} vs ${c.cov_trace[0]}`);
    // The unblocked eigenvector route takes minutes at 2048-d: Inception-sized cases check the default route.
    for (const route of c.d > 512 ? (['cholesky'] as const) : (['eigh', 'cholesky', 'pivoted'] as const)) {
      const r = frechetDistance(ma, ca, mb, cb, { route });
      // Cholesky factors whichever covariance is positive definite; with both singular it falls
      // back to a pivoted Cholesky.
      assert.equal(
        r.route,
        route === 'cholesky' && c.cov_min_eig <= 1e-12 && c.cov2_min_eig <= 1e-12 ? 'pivoted' : route,
      );
      assert.ok(rel(r.fid, c.fid_pytorch_fid) < 1e-6, `${route}: FID ${r.fid} vs pytorch-fid ${c.fid_pytorch_fid}`);
      assert.ok(rel(r.fid, c.fid_eigvals) < 1e-6, `${route}: FID ${r.fid} vs eigvals route ${c.fid_eigvals}`);
    }
  });
}

test('KID: unbiased MMD² matches the NumPy reference; subsets are seeded; small sets are refused', () => {
  const c = fixtures.cases[0];
  const x = features(c.n1, c.d, c.s1);
  const y = features(c.n2, c.d, c.s2);
  const all = Int32Array.from({ length: c.m }, (_, i) => i);
  assert.ok(rel(mmd2(x, all, y, all, c.d), c.mmd2_first_m) < 1e-9);
  // From precomputed kernels (the regression bootstrap's path): same value, also with repeated rows.
  const m = Math.min(c.n1, c.n2, 120);
  const K = kernelMatrices(x.subarray(0, m * c.d), y.subarray(0, m * c.d), m, c.d);
  const rows = Int32Array.from({ length: m }, (_, i) => ((i * 7) % m === 3 ? 0 : (i * 7) % m));
  assert.ok(rel(mmd2Rows(K, rows), mmd2(x, rows, y, rows, c.d)) < 1e-12);
  const k1 = kernelInceptionDistance(x, c.n1, y, c.n2, c.d, { subsets: 5, subsetSize: 100, seed: 3 });
  const k2 = kernelInceptionDistance(x, c.n1, y, c.n2, c.d, { subsets: 5, subsetSize: 100, seed: 3 });
  assert.deepEqual(k1, k2);
  assert.notEqual(
    kernelInceptionDistance(x, c.n1, y, c.n2, c.d, { subsets: 5, subsetSize: 100, seed: 4 }).kid_mean,
    k1.kid_mean,
  );
  assert.throws(
    () => kernelInceptionDistance(x, c.n1, y, c.n2, c.d, { subsetSize: 1000 }),
    /subset size 1000 exceeds the sample count \(500 and 400\)/,
  );
});

test('KID subset rule min(1000, ⌊n/2⌋): subsets differ, mean and std match NumPy on the same subsets; no std of identical subsets', () => {
  const d = 16;
  const n = 100; // the benchmark's m
  const x = features(n, d, 21, 0.2);
  const y = features(n, d, 22, 0.2);
  assert.deepEqual(
    [kidSubsetSize(100, 100), kidSubsetSize(100, 400), kidSubsetSize(999, 999), kidSubsetSize(5000, 3000)],
    [50, 50, 499, 1000],
  );
  const k = kernelInceptionDistance(x, n, y, n, d, { subsets: 20, seed: 1 });
  assert.equal(k.subset_size, 50);
  const subsets = kidSubsets(n, n, 50, 20, 1);
  // NumPy recomputes torch-fidelity's per-subset unbiased MMD² (polynomial kernel, degree 3,
  // γ = 1/d, c = 1) on our subsets.
  const dir = tmp();
  writeNpz(join(dir, 'kid.npz'), {
    x: { shape: [n, d], data: x },
    y: { shape: [n, d], data: y },
    a: { shape: [20, 50], data: Float64Array.from(subsets.flatMap(([a]) => [...a])) },
    b: { shape: [20, 50], data: Float64Array.from(subsets.flatMap(([, b]) => [...b])) },
  });
  const py = `import numpy as np
f=np.load('${dir}/kid.npz'); x,y=f['x'],f['y']; d=x.shape[1]
def mmd(X,Y):
    m=X.shape[0]; kxx=(X@X.T/d+1)**3; kyy=(Y@Y.T/d+1)**3; kxy=(X@Y.T/d+1)**3
    return (kxx.sum()-np.trace(kxx))/(m*(m-1))+(kyy.sum()-np.trace(kyy))/(m*(m-1))-2*kxy.mean()
v=np.array([mmd(x[a.astype(int)],y[b.astype(int)]) for a,b in zip(f['a'],f['b'])])
print(repr(float(v.mean())), repr(float(v.std())))`;
  const [mean, std] = execFileSync(requirePython(['numpy']), ['-c', py])
    .toString()
    .trim()
    .split(' ')
    .map(Number);
  assert.ok(rel(k.kid_mean, mean) < 1e-9, `KID mean ${k.kid_mean} vs NumPy ${mean}`);
  assert.ok(k.kid_std !== null && rel(k.kid_std, std) < 1e-9, `KID std ${k.kid_std} vs NumPy ${std}`);
  // The old rule's (subsets of the full set) spread is round-off: not a std, so none is given.
  const full = kernelInceptionDistance(x, n, y, n, d, { subsets: 20, subsetSize: n, seed: 1 });
  assert.equal(full.kid_std, null);
  assert.ok(
    rel(full.kid_mean, mmd2(x, kidSubsets(n, n, n, 1, 0)[0][0].sort(), y, kidSubsets(n, n, n, 1, 0)[0][1].sort(), d)) <
      1e-9,
  );
  assert.equal(kernelInceptionDistance(x, n, y, n, d, { subsets: 1 }).kid_std, null);
  assert.throws(() => kernelInceptionDistance(x, 3, y, 3, d), /subset size 1 is below 2/);
});

test('FID of resampled items from Gram matrices (the report bootstrap) = fidFromFeatures = SciPy sqrtm, repeats included', () => {
  const d = 64;
  const n = 60;
  const x = features(n, d, 31, 0.3);
  const y = features(n, d, 32, 0.3);
  const g = fidGram(x, y, n, d);
  const idx = Int32Array.from({ length: n }, (_, i) => (i * 37 + (i % 4)) % n); // with repeats
  const ours = fidOfRows(g, idx);
  assert.ok(
    rel(ours, fidFromFeatures(x, n, y, n, d, idx, idx)) < 1e-6,
    `${ours} vs ${fidFromFeatures(x, n, y, n, d, idx, idx)}`,
  );
  const dir = tmp();
  writeNpz(join(dir, 'f.npz'), {
    x: { shape: [n, d], data: x },
    y: { shape: [n, d], data: y },
    idx: { shape: [n], data: Float64Array.from(idx) },
  });
  const py = `import numpy as np, scipy.linalg as la
f=np.load('${dir}/f.npz'); i=f['idx'].astype(int); x,y=f['x'][i],f['y'][i]
m1,m2=x.mean(0),y.mean(0); s1,s2=np.cov(x,rowvar=False),np.cov(y,rowvar=False)
c=la.sqrtm(s1@s2).real
print(repr(float(((m1-m2)**2).sum()+np.trace(s1)+np.trace(s2)-2*np.trace(c))))`;
  const ref = Number(
    execFileSync(requirePython(['numpy', 'scipy']), ['-c', py])
      .toString()
      .trim(),
  );
  assert.ok(rel(ours, ref) < 1e-6, `${ours} vs SciPy ${ref}`);
  // More items than dimensions: the d × d route, same value.
  const [xs, ys] = [x.subarray(0, n * 8), y.subarray(0, n * 8)];
  assert.equal(fidOfRows(fidGram(xs, ys, n, 8), idx), fidFromFeatures(xs, n, ys, n, 8, idx, idx));
});

test("npz statistics: ours read by NumPy, NumPy's (float32 and float64) read by us", () => {
  const d = tmp();
  const mu = Float64Array.from([1.5, -2, 3.25]);
  const sigma = Float64Array.from([1, 0.5, 0, 0.5, 2, 0.1, 0, 0.1, 3]);
  writeNpz(join(d, 'ours.npz'), { mu: { shape: [3], data: mu }, sigma: { shape: [3, 3], data: sigma } });
  const check = execFileSync(requirePython(['numpy']), [
    '-c',
    `import numpy as np; f=np.load('${d}/ours.npz'); print(f['mu'].tolist(), f['sigma'][1].tolist(), f['sigma'].dtype)`,
  ]).toString();
  assert.equal(check.trim(), '[1.5, -2.0, 3.25] [0.5, 2.0, 0.1] float64');
  execFileSync(requirePython(['numpy']), [
    '-c',
    `import numpy as np; s=np.arange(9.).reshape(3,3); np.savez('${d}/np64.npz', mu=np.array([1.,2.,3.]), sigma=s); np.savez_compressed('${d}/np32.npz', mu=np.array([1.,2.,3.],dtype=np.float32), sigma=np.asfortranarray(s.astype(np.float32)))`,
  ]);
  for (const f of ['np64.npz', 'np32.npz']) {
    const z = readNpz(join(d, f));
    assert.deepEqual([...z.get('mu')!.data], [1, 2, 3]);
    assert.deepEqual(z.get('sigma')!.shape, [3, 3]);
    assert.deepEqual([...z.get('sigma')!.data], [0, 1, 2, 3, 4, 5, 6, 7, 8], `${f} (C order after reading)`);
  }
});

test('FID bootstrap from cached features: seeded, brackets the estimate, paired resampling', () => {
  const d = 8;
  const x = features(300, d, 11, 0.3);
  const y = features(300, d, 12, 0.3);
  const a = fidBootstrap(x, 300, y, 300, d, { resamples: 60, seed: 5 });
  assert.deepEqual(a, fidBootstrap(x, 300, y, 300, d, { resamples: 60, seed: 5 }));
  assert.ok(Math.abs(a.estimate - fidFromFeatures(x, 300, y, 300, d)) < 1e-12);
  assert.ok(a.lo < a.estimate && a.estimate < a.hi, `${a.lo} < ${a.estimate} < ${a.hi}`);
  assert.throws(() => fidBootstrap(x, 300, y, 200, d, { paired: true }), /paired FID bootstrap needs equal set sizes/);
  const unpaired = fidBootstrap(x, 300, y, 200, d, { resamples: 30, seed: 5 });
  assert.ok(unpaired.hi > unpaired.lo);
});
