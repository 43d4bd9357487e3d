/** `sdd fid` end to end: folders of PNGs through the feature net, npz statistics, and scipy's verdict. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { requirePython } from '../util/python.js';
import { join } from 'node:path';
import { sdd, tmp } from '../../test/helpers.js';
import { face } from '../../datasets/toyfaces/world.js';
import { withAttribute } from '../../datasets/toyfaces/attributes.js';
import { render } from '../../datasets/toyfaces/render.js';
import { writePng } from '../util/image_io.js';

test('sdd fid: folders and npz agree, match pytorch-fid on the saved statistics, bad input exits 2', async () => {
  const d = tmp();
  const env = { SDD_CACHE: join(d, 'cache') };
  // n > d (128): a full-rank covariance, where the references agree to 1e-6 among themselves.
  for (let i = 0; i < 200; i++) {
    const f = face('test', i);
    writePng(join(d, 'a', `${i}.png`), render(f), 32, 32);
    writePng(
      join(d, 'b', `${i}.png`),
      render(withAttribute(f, 'glasses', f.attrs.glasses === 'none' ? 'glasses' : 'none')),
      32,
      32,
    );
  }
  const r = await sdd(['fid', join(d, 'a'), join(d, 'b'), '--json'], { env });
  assert.equal(r.exitCode, 0, r.all);
  const out = JSON.parse(r.stdout) as {
    fid: number;
    n1: number;
    dims: number;
    features: string;
    resize: string[];
    weights_sha256: string;
  };
  assert.equal(out.n1, 200);
  assert.equal(out.dims, 128);
  assert.equal(out.features, 'toyfaces-featnet');
  assert.deepEqual(out.resize, ['none', 'none']);
  assert.match(out.weights_sha256, /^[0-9a-f]{64}$/);
  assert.ok(out.fid > 0);
  for (const s of ['a', 'b'])
    assert.equal((await sdd(['fid', '--save-stats', join(d, s), join(d, `${s}.npz`)], { env })).exitCode, 0);
  const viaNpz = JSON.parse((await sdd(['fid', join(d, 'a.npz'), join(d, 'b'), '--json'], { env })).stdout) as {
    fid: number;
  };
  assert.equal(viaNpz.fid, out.fid);
  // pytorch-fid's formula (scipy sqrtm) on the statistics we saved.
  const ref = Number(
    execFileSync(
      requirePython(['numpy', 'scipy']),
      [
        '-c',
        `import numpy as np; from scipy import linalg
a=np.load('${d}/a.npz'); b=np.load('${d}/b.npz'); m1,s1,m2,s2=a['mu'],a['sigma'],b['mu'],b['sigma']
c,_=linalg.sqrtm(s1.dot(s2), disp=False); c=c.real
print(repr(float((m1-m2).dot(m1-m2)+np.trace(s1)+np.trace(s2)-2*np.trace(c))))`,
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    ).toString(),
  );
  // 2e-6: with featnet v2 these 200 faces give a Σ₁ of condition number ~4e10 (smallest
  // eigenvalue 5e-9; our result reports one eigenvalue clamped at 0); there scipy's sqrtm, numpy's
  // eigvals(Σ₁Σ₂) and eigvalsh(√Σ₁ Σ₂ √Σ₁) agree to 1.5e-7 and ours is 1.1e-6 from them.
  // Well-conditioned covariances match within 1e-6 (linalg.test.ts, bench-fid).
  assert.ok(Math.abs(out.fid - ref) / ref < 2e-6, `ours ${out.fid} vs scipy ${ref}`);
  for (const bad of [
    [join(d, 'a')],
    [join(d, 'nope'), join(d, 'b')],
    [join(d, 'a'), join(d, 'b'), '--features', 'incepton'],
  ]) {
    const e = await sdd(['fid', ...bad], { env });
    assert.equal(e.exitCode, 2, e.all);
    assert.equal(e.stderr.trim().split('\n').length, 1);
  }
});
