/**
 * The core of the torch engine (python/sdd_torch): its port of our RNG and its safetensors reader
 * checked against the TypeScript originals on the same inputs, then its Python unit tests
 * (python/tests/test_core.py: the run contract, checkpoints, the CLI and the worker; run there
 * with `cd python && /usr/bin/python3 -m unittest tests.test_core`).
 *
 * Tolerances: Rng.next() and every integer draw bit-identical (0 mismatches). normal() as float32
 * (what the contract's noise files hold): expected identical, allowed at most 1 float32 ulp
 * (V8's Math.log/cos are fdlibm ports, CPython's math module calls glibc; they differ by up to
 * 3 float64 ulps in ~6 % of values, which the float32 rounding absorbs: 0 of 2·10⁶ differed when
 * measured). normal() as float64: at most 4 float64 ulps for the same reason. safetensors: names,
 * shapes, dtypes, metadata and the float32 values' bytes identical.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmp } from './helpers.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { sha256 } from '../src/util/hash.js';
import { requirePython } from '../src/util/python.js';
import { Rng, streamRng } from '../src/util/rng.js';
import { asFloat32, readSafetensors, serializeSafetensors, f32 } from '../src/util/safetensors.js';
import { readNpyF32, writeNpyF32 } from '../src/methods/contract.js';

const PYTHON = requirePython(['torch', 'numpy']);
const PYDIR = join(PROJECT_ROOT, 'python');

/** Runs Python code with the package on its path; returns stdout, failing with its stderr. */
function py(code: string, args: string[] = [], cwd = PYDIR): string {
  const r = spawnSync(PYTHON, ['-c', code, ...args], {
    cwd,
    encoding: 'utf-8',
    env: { ...process.env, PYTHONPATH: PYDIR },
  });
  assert.equal(r.status, 0, `python failed:\n${r.stderr}`);
  return r.stdout;
}

// ---------------------------------------------------------------- RNG

interface RngCase {
  seed: number;
  /** streamRng(seed, name) when set, else new Rng(seed). */
  name?: string;
}
const CASES: RngCase[] = [
  { seed: 0 },
  { seed: 1 },
  { seed: 42 },
  { seed: 2 ** 31 },
  { seed: 2 ** 32 - 1 },
  { seed: 0, name: 'contract:edit' },
  { seed: 7, name: 'train' },
  { seed: 123456789, name: 'bootstrap' },
];
const N_NEXT = 1000;
const N_NORMAL = 100_000;
const N_NORMAL64 = 10_000;

function rngOf(c: RngCase): Rng {
  return c.name === undefined ? new Rng(c.seed) : streamRng(c.seed, c.name);
}

/** Every draw kind on fresh streams, in the order the Python side repeats them. */
function draws(c: RngCase): Record<string, number[]> {
  const r = rngOf(c);
  const next = Array.from({ length: N_NEXT }, () => r.next());
  const normal64 = Array.from({ length: N_NORMAL64 }, () => r.normal());
  const q = rngOf(c);
  const ints = Array.from({ length: 100 }, () => q.int(1000));
  const uniforms = Array.from({ length: 100 }, () => q.uniform(-2, 3));
  const shuffled = q.shuffle(Array.from({ length: 20 }, (_, i) => i));
  const picked = Array.from({ length: 10 }, () => q.pick([10, 20, 30, 40, 50]));
  return { next, normal64, ints, uniforms, shuffled, picked, after: [q.next()] };
}

const RNG_PY = `
import json, sys, time
import numpy as np
from sdd_torch.rng import Rng, stream_rng, normals
dir = sys.argv[1]
cases = json.load(open(dir + "/cases.json"))
spent = 0.0
for k, c in enumerate(cases):
    make = (lambda: stream_rng(c["seed"], c["name"])) if "name" in c else (lambda: Rng(c["seed"]))
    r = make()
    out = {"next": [r.next() for _ in range(c["n_next"])], "normal64": [r.normal() for _ in range(c["n_normal64"])]}
    q = make()
    out["ints"] = [q.int(1000) for _ in range(100)]
    out["uniforms"] = [q.uniform(-2, 3) for _ in range(100)]
    out["shuffled"] = q.shuffle(list(range(20)))
    out["picked"] = [q.pick([10, 20, 30, 40, 50]) for _ in range(10)]
    out["after"] = [q.next()]
    json.dump(out, open(f"{dir}/py_{k}.json", "w"))
    t0 = time.perf_counter()
    x = normals(make(), c["n_normal"])
    spent += time.perf_counter() - t0
    np.save(f"{dir}/py_{k}.npy", x)
print(json.dumps({"us_per_normal": spent / sum(c["n_normal"] for c in cases) * 1e6}))
`;

/** Distance in units in the last place between two floats of the same sign class (0 when equal). */
function ulps(a: Float32Array | Float64Array, b: Float32Array | Float64Array): number {
  const [ia, ib] =
    a instanceof Float32Array
      ? [new Int32Array(a.buffer), new Int32Array((b as Float32Array).buffer)]
      : [new BigInt64Array(a.buffer), new BigInt64Array(b.buffer)];
  let worst = 0;
  for (let i = 0; i < ia.length; i++) worst = Math.max(worst, Math.abs(Number(BigInt(ia[i]) - BigInt(ib[i]))));
  return worst;
}

test('rng: the Python port draws the TS streams bit for bit (next, int, uniform, shuffle, pick; normal within the stated ulps)', (t) => {
  const dir = tmp('sdd-torch-rng-');
  writeFileSync(
    join(dir, 'cases.json'),
    JSON.stringify(CASES.map((c) => ({ ...c, n_next: N_NEXT, n_normal: N_NORMAL, n_normal64: N_NORMAL64 }))),
  );
  const speed = JSON.parse(py(RNG_PY, [dir])) as { us_per_normal: number };
  let f32Mismatches = 0;
  let f64Mismatches = 0;
  CASES.forEach((c, k) => {
    const what = c.name === undefined ? `Rng(${c.seed})` : `streamRng(${c.seed}, ${c.name})`;
    const ts = draws(c);
    const got = JSON.parse(readFileSync(join(dir, `py_${k}.json`), 'utf-8')) as Record<string, number[]>;
    for (const key of ['next', 'ints', 'uniforms', 'shuffled', 'picked', 'after'])
      assert.deepEqual(got[key], ts[key], `${what}: ${key} bit-identical`);
    const n64 = ulps(Float64Array.from(ts.normal64), Float64Array.from(got.normal64));
    assert.ok(n64 <= 4, `${what}: normal() float64 within 4 ulps, got ${n64}`);
    f64Mismatches += ts.normal64.filter((v, i) => v !== got.normal64[i]).length;
    const r = rngOf(c);
    const want = Float32Array.from({ length: N_NORMAL }, () => r.normal());
    const have = readNpyF32(join(dir, `py_${k}.npy`), `py_${k}.npy`, [N_NORMAL]);
    assert.ok(ulps(want, have) <= 1, `${what}: normals() float32 within 1 ulp`);
    f32Mismatches += want.filter((v, i) => v !== have[i]).length;
  });
  t.diagnostic(
    `normal() float32 mismatches: ${f32Mismatches} of ${CASES.length * N_NORMAL}; float64 (1-4 ulp, libm vs V8): ${f64Mismatches} of ${CASES.length * N_NORMAL64}`,
  );
  t.diagnostic(
    `normals(): ${speed.us_per_normal.toFixed(2)} µs per value (1e6 values: ${speed.us_per_normal.toFixed(1)} s)`,
  );
  // A guard against a slow rewrite, loose for a loaded shared machine (measured 0.8 µs on one core).
  assert.ok(speed.us_per_normal < 10, `normals() ${speed.us_per_normal} µs per value`);
});

test('rng: a contract noise file is re-drawn by its rng_seed (writeNpyF32 of the TS draws)', () => {
  const dir = tmp('sdd-torch-noise-');
  const seed = parseInt(sha256('3:contract:edit').slice(0, 8), 16);
  const r = new Rng(seed);
  writeNpyF32(
    join(dir, 'noise_edit.npy'),
    [4, 8, 8, 3],
    Float32Array.from({ length: 4 * 8 * 8 * 3 }, () => r.normal()),
  );
  const out = py(
    `
import sys, numpy as np
from sdd_torch.rng import Rng, contract_seed, normals
x = np.load(sys.argv[1] + "/noise_edit.npy")
s = contract_seed(3, "edit")
y = normals(Rng(s), x.size).reshape(x.shape)
print(s, int((x != y).sum()))
`,
    [dir],
  );
  assert.equal(out.trim(), `${seed} 0`);
});

// ---------------------------------------------------------------- safetensors

const ZOO = ['clip', 'diffae', 'featnet', 'idnet', 'ldm', 'stylegen', 'vae'].map((m) =>
  join(PROJECT_ROOT, 'datasets/toyfaces/zoo', m, 'weights.safetensors'),
);

interface Described {
  metadata: Record<string, string>;
  tensors: Record<string, { dtype: string; shape: number[]; sha256: string }>;
}

const DESCRIBE_PY = `
import hashlib, json, sys
from sdd_torch import safetensors_np as st
out = []
for path in sys.argv[1:]:
    h = st.read_header(path)
    tensors, metadata = st.read(path)
    out.append({"metadata": metadata, "tensors": {n: {"dtype": h.entries[n].dtype, "shape": list(x.shape),
        "sha256": hashlib.sha256(x.astype("<f4").tobytes()).hexdigest()} for n, x in tensors.items()}})
print(json.dumps(out))
`;

test('safetensors: every zoo file reads as src/util/safetensors.ts reads it (names, shapes, dtypes, metadata, float32 bytes)', () => {
  const got = JSON.parse(py(DESCRIBE_PY, ZOO)) as Described[];
  ZOO.forEach((path, k) => {
    const f = readSafetensors(path);
    const tensors = Object.fromEntries(
      [...f.tensors].map(([n, t]) => {
        const v = asFloat32(t);
        return [
          n,
          { dtype: t.dtype, shape: t.shape, sha256: sha256(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) },
        ];
      }),
    );
    assert.deepEqual(got[k].tensors, tensors, path);
    assert.deepEqual(got[k].metadata, f.metadata, path);
  });
});

const STRICT_PY = `
import json, sys
from sdd_torch import safetensors_np as st
expected = json.load(open(sys.argv[1]))
out = {}
for path in sys.argv[2:]:
    try:
        st.load(path, expected_names=expected)
        out[path] = "ok"
    except st.SafetensorsError as e:
        out[path] = str(e)
print(json.dumps(out))
`;

test('safetensors: strict loading names the file and the missing or unexpected tensor in one line; a bad file is one line too', () => {
  const dir = tmp('sdd-torch-st-');
  const vae = readSafetensors(ZOO[6]);
  const names = [...vae.tensors.keys()].sort();
  const drop = names[3];
  const without = new Map([...vae.tensors].filter(([n]) => n !== drop));
  const extra = new Map([...vae.tensors, ['extra.weight', f32([2], Float32Array.from([1, 2]))]]);
  const files = {
    same: join(dir, 'same.safetensors'),
    missing: join(dir, 'missing.safetensors'),
    extra: join(dir, 'extra.safetensors'),
    truncated: join(dir, 'truncated.safetensors'),
    absent: join(dir, 'absent.safetensors'),
  };
  writeFileSync(files.same, serializeSafetensors(vae.tensors, vae.metadata));
  writeFileSync(files.missing, serializeSafetensors(without, vae.metadata));
  writeFileSync(files.extra, serializeSafetensors(extra));
  const whole = readFileSync(files.same);
  writeFileSync(files.truncated, whole.subarray(0, whole.length - 10));
  writeFileSync(join(dir, 'names.json'), JSON.stringify(names));
  const got = JSON.parse(py(STRICT_PY, [join(dir, 'names.json'), ...Object.values(files)])) as Record<string, string>;
  assert.equal(got[files.same], 'ok');
  assert.equal(got[files.missing], `${files.missing}: missing tensor ${drop}`);
  assert.equal(got[files.extra], `${files.extra}: unexpected tensor extra.weight`);
  assert.match(got[files.truncated], /truncated\.safetensors: .*outside the \d+-byte buffer \(truncated\?\)$/);
  assert.equal(got[files.absent], `${files.absent}: no such file`);
  for (const line of Object.values(got)) assert.ok(!line.includes('\n'), line);
});

// ---------------------------------------------------------------- the Python unit tests

test('python/tests/test_core.py: RunContext, checkpoints, runtime switches, registry, run/worker/doctor', () => {
  const r = spawnSync(PYTHON, ['-m', 'unittest', 'tests.test_core'], {
    cwd: PYDIR,
    encoding: 'utf-8',
    env: { ...process.env, PYTHONPATH: PYDIR },
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^Ran \d+ tests in .*\n\nOK/m);
});
