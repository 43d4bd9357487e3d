/**
 * The comparison a torch-twin parity test makes (test/torch_sd.test.ts, test/torch_models.test.ts):
 * TS runs every case on the inputs, and for a case with `wrt` the gradient of a fixed random
 * projection ⟨R, f(x)⟩ w.r.t. that input; the inputs, projections and cases.json ({cases: names,
 * wrt: {name: input}, ...meta}) go to a temporary folder; the Python script (argv: that folder,
 * then `args`) writes py/out_<case>.npy and py/grad_<case>.npy; each is compared with assertClose
 * at the case's bound.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { PROJECT_ROOT } from '../src/util/env.js';
import { requirePython } from '../src/util/python.js';
import type { Rng } from '../src/util/rng.js';
import type { DiffusionModels } from '../src/world/types.js';
import { readNpyF32, writeNpyF32 } from '../src/methods/contract.js';
import { assertClose } from './parity.js';
import { tmp } from './helpers.js';

const PYDIR = join(PROJECT_ROOT, 'python');

/** One entry point: its output from the inputs, and the input its gradient is taken for. */
export interface ParityCase {
  name: string;
  run: (i: Record<string, tf.Tensor>) => tf.Tensor;
  wrt?: string;
  /** Allowed max |Δ| / max |TS| of the output and of the gradient. */
  rel: number;
  gradRel?: number;
}

/** Seeded tensors drawn from `rng` in call order: normals times `scale`, and uniforms on [lo, hi). */
export function seededTensors(rng: Rng): {
  normal: (shape: number[], scale?: number) => tf.Tensor;
  uniform: (shape: number[], lo?: number, hi?: number) => tf.Tensor;
} {
  const size = (shape: number[]) => shape.reduce((a, b) => a * b);
  return {
    normal: (shape, scale = 1) =>
      tf.tensor(
        Float32Array.from({ length: size(shape) }, () => scale * rng.normal()),
        shape,
      ),
    uniform: (shape, lo = 0, hi = 1) =>
      tf.tensor(
        Float32Array.from({ length: size(shape) }, () => rng.uniform(lo, hi)),
        shape,
      ),
  };
}

/** An input as the 4-D tensor the models take. */
export const x4 = (i: Record<string, tf.Tensor>, k: string) => i[k] as tf.Tensor4D;

/**
 * A World's latent diffusion cases, the same in every twin (test/torch_models.test.ts,
 * test/torch_sd.test.ts): the VAE encode (without and with `noise`) and decode, the text
 * condition's context and mask (exact: 0/1), and ε, with their gradients. `vae` prefixes the VAE
 * cases' names and `eps` names ε, as each twin's script calls them.
 */
export function latentCases(
  dm: DiffusionModels,
  names: { vae: string; eps: string },
  bound: { rel: number; gradRel: number },
): Record<'encode' | 'encodeNoise' | 'decode' | 'context' | 'mask' | 'eps', ParityCase> {
  const { rel, gradRel } = bound;
  const vae = (name: string, run: ParityCase['run'], wrt: string): ParityCase => ({
    name: `${names.vae}${name}`,
    run,
    wrt,
    rel,
    gradRel,
  });
  return {
    encode: vae('encode', (i) => dm.encode(x4(i, 'x')), 'x'),
    encodeNoise: vae('encode_noise', (i) => dm.encode(x4(i, 'x'), x4(i, 'noise')), 'x'),
    decode: vae('decode', (i) => dm.decode(x4(i, 'z')), 'z'),
    context: { name: 'text_context', run: (i) => i.context, rel },
    mask: { name: 'text_mask', run: (i) => i.mask, rel: 0 },
    eps: {
      name: names.eps,
      run: (i) => dm.eps(x4(i, 'zt'), i.t as tf.Tensor1D, i.context as tf.Tensor3D, i.mask as tf.Tensor2D),
      wrt: 'zt',
      rel,
      gradRel,
    },
  };
}

interface Ours {
  out: Float32Array;
  shape: number[];
  grad?: Float32Array;
  gradShape?: number[];
}

export interface ParityRun {
  inputs: Record<string, tf.Tensor>;
  cases: ParityCase[];
  /** Seeded normals of a shape: the projections R. */
  normal: (shape: number[]) => tf.Tensor;
  /** python/tests/<script> and its arguments after the folder. */
  script: string;
  args: string[];
  meta?: Record<string, unknown>;
}

export function compareWithTorch(t: { diagnostic(m: string): void }, run: ParityRun): void {
  const dir = tmp('sdd-torch-parity-');
  const save = (name: string, x: tf.Tensor) =>
    writeNpyF32(join(dir, `${name}.npy`), x.shape, Float32Array.from(x.dataSync()));
  for (const [k, v] of Object.entries(run.inputs)) save(`in_${k}`, v);
  const ours = new Map<string, Ours>();
  const t0 = performance.now();
  for (const cs of run.cases) {
    const out = cs.run(run.inputs);
    const got: Ours = { out: out.dataSync() as Float32Array, shape: out.shape };
    if (cs.wrt) {
      const proj = run.normal(out.shape);
      save(`proj_${cs.name}`, proj);
      const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(cs.run({ ...run.inputs, [cs.wrt!]: v }), proj)))(
        run.inputs[cs.wrt],
      );
      got.grad = g.dataSync() as Float32Array;
      got.gradShape = g.shape;
    }
    ours.set(cs.name, got);
  }
  const tsMs = performance.now() - t0;
  const wrt = Object.fromEntries(run.cases.filter((cs) => cs.wrt).map((cs) => [cs.name, cs.wrt]));
  writeFileSync(join(dir, 'cases.json'), JSON.stringify({ ...run.meta, cases: run.cases.map((cs) => cs.name), wrt }));
  const r = spawnSync(requirePython(['torch', 'numpy']), [join(PYDIR, 'tests', run.script), dir, ...run.args], {
    encoding: 'utf-8',
    env: { ...process.env, PYTHONPATH: PYDIR },
  });
  assert.equal(r.status, 0, `${run.script} failed:\n${r.stderr}`);
  t.diagnostic(`TS (${tf.getBackend()}) forward+grad ${(tsMs / 1000).toFixed(1)} s; torch ${r.stdout.trim()}`);
  const read = (name: string, shape: number[]) => readNpyF32(join(dir, 'py', `${name}.npy`), name, shape);
  for (const cs of run.cases) {
    const mine = ours.get(cs.name)!;
    assertClose(t, cs.name, read(`out_${cs.name}`, mine.shape), mine.out, cs.rel);
    if (cs.wrt)
      assertClose(t, `${cs.name} ∂/∂${cs.wrt}`, read(`grad_${cs.name}`, mine.gradShape!), mine.grad!, cs.gradRel);
  }
}
