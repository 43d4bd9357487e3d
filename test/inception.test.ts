/**
 * The FID Inception against pytorch-fid (fixture: tools/make_inception_fixture.py, pytorch-fid's
 * own code with full-size synthetic weights that test/synthetic_weights.ts recreates).
 * Tolerances: pool3 features max |Δ| ≤ 1e-4 · max |feature| (float32, different summation
 * orders over 94 layers); FID within 1e-3 absolute (the bar).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { sha256 } from '../src/util/hash.js';
import { asFloat32, f32, readSafetensors, writeSafetensors } from '../src/util/safetensors.js';
import { folderFeatures } from '../src/metrics/features.js';
import { inceptionExtractor } from '../src/metrics/inception.js';
import { writeSynthetic, type SyntheticSpec } from './synthetic_weights.js';
import { sdd, tmp } from './helpers.js';
import { assertClose } from './parity.js';

const FIX = join(PROJECT_ROOT, 'test', 'fixtures', 'inception');
const spec = JSON.parse(readFileSync(join(FIX, 'weights.json'), 'utf-8')) as SyntheticSpec;
const expected = JSON.parse(readFileSync(join(FIX, 'expected.json'), 'utf-8')) as { fid: number };
const dir = tmp('sdd-inception-');
const weights = join(dir, 'inception.safetensors');
const written = writeSynthetic(weights, spec);

test('synthetic weights equal what the converter wrote from the .pth (names, shapes, float32 bytes)', () => {
  assert.equal(written.size, 470);
  for (const t of spec.tensors) assert.equal(sha256(written.get(t.name)!.data), t.sha256, t.name);
});

test('pool3 features match pytorch-fid on the same weights and images', async (t) => {
  await initBackend('wasm');
  const ex = await inceptionExtractor(weights);
  const ref = readSafetensors(join(FIX, 'features.safetensors'));
  for (const d of ['a', 'b']) {
    const { features, n, resize } = await folderFeatures(join(FIX, d), ex);
    assert.equal(resize, 'bilinear');
    assert.equal(n, 12);
    assertClose(t, `features of ${d}/`, features, asFloat32(ref.tensors.get(d)!));
  }
});

test('sdd fid --features inception matches pytorch-fid within 1e-3', async (t) => {
  const r = await sdd(
    [
      'fid',
      join(FIX, 'a'),
      join(FIX, 'b'),
      '--features',
      'inception',
      '--weights',
      weights,
      '--json',
      '--backend',
      'wasm',
    ],
    { env: { SDD_CACHE: join(dir, 'cache') } },
  );
  assert.equal(r.exitCode, 0, r.all);
  const out = JSON.parse(r.stdout) as { fid: number; dims: number; features: string };
  assert.equal(out.dims, 2048);
  t.diagnostic(
    `FID ${out.fid} vs pytorch-fid ${expected.fid} (|Δ| ${Math.abs(out.fid - expected.fid).toExponential(2)})`,
  );
  assert.ok(Math.abs(out.fid - expected.fid) <= 1e-3, `FID ${out.fid} vs pytorch-fid ${expected.fid}`);
});

test('a weights file that does not fit, is truncated or has overlapping tensors: exit 2, one line naming the fault', async () => {
  const st = readSafetensors(weights);
  st.tensors.delete('Mixed_6b.branch1x1.conv.weight');
  st.tensors.set('fc.weight', f32([2, 2], new Float32Array(4)));
  const bad = join(dir, 'renamed.safetensors');
  writeSafetensors(bad, st.tensors);
  const r = await sdd(
    ['fid', join(FIX, 'a'), join(FIX, 'b'), '--features', 'inception', '--weights', bad, '--backend', 'wasm'],
    { env: { SDD_CACHE: join(dir, 'cache') } },
  );
  assert.equal(r.exitCode, 2, r.all);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(
    lines[0],
    /renamed\.safetensors: does not fit the model .*missing 1 \(Mixed_6b\.branch1x1\.conv\.weight\).*unexpected 1 \(fc\.weight\)/,
  );
  // A truncated file and an overlapping header fail at open, before any tensor is read.
  const bytes = readFileSync(weights);
  const truncated = join(dir, 'truncated.safetensors');
  writeFileSync(truncated, bytes.subarray(0, bytes.length - 1000));
  const overlap = join(dir, 'overlap.safetensors');
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf-8')) as Record<string, { data_offsets: number[] }>;
  const [a, b] = Object.keys(header)
    .filter((k) => k !== '__metadata__')
    .sort((x, y) => header[x].data_offsets[0] - header[y].data_offsets[0]);
  header[b].data_offsets = [
    header[a].data_offsets[0],
    header[a].data_offsets[0] + (header[b].data_offsets[1] - header[b].data_offsets[0]),
  ];
  const text = Buffer.from(JSON.stringify(header).padEnd(n, ' '));
  writeFileSync(overlap, Buffer.concat([bytes.subarray(0, 8), text.subarray(0, n), bytes.subarray(8 + n)]));
  for (const [file, why] of [
    [truncated, /truncated\.safetensors: .*(truncated|data|bytes)/],
    [overlap, /overlap\.safetensors: .*(overlap|gap|tile)/],
  ] as const) {
    const r2 = await sdd(
      ['fid', join(FIX, 'a'), join(FIX, 'b'), '--features', 'inception', '--weights', file, '--backend', 'wasm'],
      { env: { SDD_CACHE: join(dir, 'cache') } },
    );
    assert.equal(r2.exitCode, 2, r2.all);
    assert.equal(r2.stderr.trim().split('\n').length, 1, r2.stderr);
    assert.match(r2.stderr, why);
  }
  const none = await sdd(['fid', join(FIX, 'a'), join(FIX, 'b'), '--features', 'inception', '--backend', 'wasm']);
  assert.equal(none.exitCode, 2, none.all);
  assert.match(none.stderr, /needs --weights FILE: .*convert_pytorch_fid_inception\.py/);
});
