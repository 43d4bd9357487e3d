/**
 * make bench-fid: the Fréchet distance of two 2048-d statistics (Inception-sized), ours (one
 * thread, then every core) vs scipy's sqrtm (pytorch-fid, clean-fid) and NumPy's eigvals of Σ₁Σ₂
 * (torch-fidelity), in one run on the same matrices (written as .npz for the Python side; NumPy
 * uses its own BLAS threads). Writes bench/results/fid.json.
 */
import { execFileSync } from 'node:child_process';
import { requirePython } from '../src/util/python.js';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { frechetDistance } from '../src/metrics/fid.js';
import { helperStrips, teamThreads } from '../src/metrics/numerics/team.js';
import { FeatureStats } from '../src/metrics/stats.js';
import { writeNpz } from '../src/metrics/npy.js';
import { Rng } from '../src/util/rng.js';
import { argValue, med, writeResult } from './common.js';

const d = Number(argValue('dims', '2048'));
const n = Number(argValue('n', String(d + 500)));

/** Correlated Gaussian-ish features: random mixing of independent normals (full rank for n > d). */
function features(seed: number): FeatureStats {
  const rng = new Rng(seed);
  const k = 64; // latent factors shared across dimensions, plus per-dimension noise
  const mix = Float64Array.from({ length: k * d }, () => rng.normal() / Math.sqrt(k));
  const st = new FeatureStats(d);
  const batch = 256;
  const rows = new Float64Array(batch * d);
  const z = new Float64Array(k);
  for (let i0 = 0; i0 < n; i0 += batch) {
    const b = Math.min(batch, n - i0);
    for (let r = 0; r < b; r++) {
      for (let a = 0; a < k; a++) z[a] = rng.normal();
      for (let j = 0; j < d; j++) {
        let v = 0.5 * rng.normal();
        for (let a = 0; a < k; a++) v += z[a] * mix[a * d + j];
        rows[r * d + j] = v;
      }
    }
    st.add(rows.subarray(0, b * d), b);
  }
  return st;
}

console.log(`building two ${d}-d statistics from ${n} samples each…`);
const a = features(1);
const b = features(2);
const [m1, s1, m2, s2] = [a.mean(), a.covariance(), b.mean(), b.covariance()];
const dir = mkdtempSync(join(tmpdir(), 'fid-bench-'));
writeNpz(join(dir, 'a.npz'), { mu: { shape: [d], data: m1 }, sigma: { shape: [d, d], data: s1 } });
writeNpz(join(dir, 'b.npz'), { mu: { shape: [d], data: m2 }, sigma: { shape: [d, d], data: s2 } });

// One thread first (helpers are only started by the first product that may use them), then the
// whole team; the first team run includes the helpers' start-up, as `sdd fid` meets it in a fresh
// process. Medians over `repeats` runs of each, Python's included.
const repeats = Number(argValue('repeats', '3'));
const threads = teamThreads();
const timed = (): { s: number; fid: number; route: string } => {
  const t0 = performance.now();
  const r = frechetDistance(m1, s1, m2, s2);
  return { s: (performance.now() - t0) / 1000, fid: r.fid, route: r.route };
};
process.env.SDD_LINALG_THREADS = '1';
const singles = Array.from({ length: repeats }, timed);
process.env.SDD_LINALG_THREADS = String(threads);
const teams = Array.from({ length: repeats }, timed);
const singleS = med(singles.map((r) => r.s));
const oursS = med(teams.map((r) => r.s));
const ours = teams[0];
console.log(
  `ours, 1 thread (${ours.route}): FID ${singles[0].fid}, median ${singleS.toFixed(2)} s [${singles.map((r) => r.s.toFixed(2)).join(', ')}]`,
);
console.log(
  `ours, ${threads} threads: FID ${ours.fid}, median ${oursS.toFixed(2)} s [${teams.map((r) => r.s.toFixed(2)).join(', ')}]; helper strips ${helperStrips()}`,
);

const py = execFileSync(
  requirePython(['numpy', 'scipy']),
  [
    '-c',
    `import json, time, numpy as np; from scipy import linalg
a=np.load('${dir}/a.npz'); b=np.load('${dir}/b.npz'); m1,s1,m2,s2=a['mu'],a['sigma'],b['mu'],b['sigma']
base=float((m1-m2).dot(m1-m2)+np.trace(s1)+np.trace(s2))
T1=[];T2=[]
for _ in range(${repeats}):
    t=time.perf_counter(); c,_=linalg.sqrtm(s1.dot(s2), disp=False); f1=base-2*float(np.trace(c.real)); T1.append(time.perf_counter()-t)
    t=time.perf_counter(); ev=linalg.eigvals(s1@s2); f2=base-2*float(np.sqrt(np.clip(ev.real,0,None)).sum()); T2.append(time.perf_counter()-t)
print(json.dumps({"sqrtm_s":float(np.median(T1)),"sqrtm_all_s":T1,"sqrtm_fid":f1,"eigvals_s":float(np.median(T2)),"eigvals_all_s":T2,"eigvals_fid":f2,"numpy":np.__version__}))`,
  ],
  { encoding: 'utf-8', stdio: ['ignore', 'pipe', 'ignore'] },
);
const ref = JSON.parse(py) as {
  sqrtm_s: number;
  sqrtm_fid: number;
  eigvals_s: number;
  eigvals_fid: number;
  numpy: string;
};
const relErr = Math.abs(ours.fid - ref.sqrtm_fid) / Math.abs(ref.sqrtm_fid);
console.log(
  `scipy sqrtm: FID ${ref.sqrtm_fid}, median ${ref.sqrtm_s.toFixed(2)} s; numpy eigvals: FID ${ref.eigvals_fid}, median ${ref.eigvals_s.toFixed(2)} s`,
);
console.log(
  `ours vs sqrtm: ×${(ref.sqrtm_s / oursS).toFixed(2)} faster, relative difference ${relErr.toExponential(2)}; vs eigvals ×${(ref.eigvals_s / oursS).toFixed(2)}`,
);
console.log(
  `wrote ${writeResult('fid', { dims: d, n, threads, repeats, ours_s: oursS, ours_all_s: teams.map((r) => r.s), ours_1thread_s: singleS, ours_1thread_all_s: singles.map((r) => r.s), route: ours.route, ours_fid: ours.fid, ...ref, rel_diff_vs_sqrtm: relErr })}`,
);
