/**
 * Full-size StyleGAN2 parity: FFHQ config-f (1024², 18 × 512, 30 M parameters) with the synthetic
 * weights of `tools/make_stylegan2_fixture.py --full --out DIR` recreated here, G(W+) and the
 * gradient of Σ(G(W+) ⊙ probe) w.r.t. W+ compared with rosinality's model.py (max |Δ| / max |ref|),
 * timed beside the reference's seconds (DIR/reference.json). The W+ gradient is ill-conditioned in
 * float32 at these sizes (PyTorch's own fp32 gradient is ~1e-3 of max from its float64 one): each
 * result is also compared with the reference in float64, beside the reference's fp32 error.
 *
 *   node --import tsx bench/stylegan2_parity.ts DIR [--backend cpu|webgpu] [--repeats 3]
 *
 * wasm cannot hold the 1024² layers' intermediate buffers (memory access out of bounds in its 4 GB
 * heap): on a CPU use --backend cpu --repeats 0.
 *
 * Writes bench/results/stylegan2_parity-<backend>.json.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.js';
import { FFHQ_CONFIG_F, loadStyleGan2, nLatent, synthesis } from '../src/nn/stylegan2.js';
import { asFloat32, readSafetensors } from '../src/util/safetensors.js';
import { values, writeSynthetic, type SyntheticSpec } from '../test/synthetic_weights.js';
import { tmp } from '../test/helpers.js';
import { maxDiff } from '../test/parity.js';
import { argValue, timedOutput, writeResult } from './common.js';

const dir = process.argv[2];
if (!dir || dir.startsWith('--'))
  throw new Error('usage: bench/stylegan2_parity.ts DIR [--backend cpu|wasm|webgpu] [--repeats 3]');
const backend = argValue('backend', 'wasm');
const repeats = Number(argValue('repeats', '3'));
await initBackend(backend as never);
const ref = readSafetensors(join(dir, 'expected.safetensors')).tensors;
const reference = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf-8')) as {
  device: string;
  batch: number;
  reference_seconds: Record<string, number>;
};
const weights = join(tmp('sdd-sg2-full-'), 'g.safetensors');
writeSynthetic(weights, JSON.parse(readFileSync(join(dir, 'weights.json'), 'utf-8')) as SyntheticSpec);
const g = loadStyleGan2(weights);
process.stdout.write(
  `generator ${g.config.size}², W+ ${nLatent(g.config)} × ${g.config.styleDim}, channels ${JSON.stringify(g.config.channels)}${g.config.size === FFHQ_CONFIG_F.size ? ' (FFHQ config-f)' : ''}\n`,
);
const b = reference.batch;
const [levels, dim, size] = [nLatent(g.config), g.config.styleDim, g.config.size];
const wplus = tf.tensor3d(values('sg2_wplus', [b, levels, dim], ['uniform', 1]), [b, levels, dim]);
const probe = tf.transpose(
  tf.tensor4d(values('sg2_probe', [b, 3, size, size], ['uniform', 1]), [b, 3, size, size]),
  [0, 2, 3, 1],
);
const forward = () => tf.transpose(synthesis(g.params, g.config, wplus), [0, 3, 1, 2]);
const gradient = () =>
  tf.grad((w: tf.Tensor) => tf.sum(tf.mul(synthesis(g.params, g.config, w as tf.Tensor3D), probe)))(wplus);

function relError(got: ArrayLike<number>, want: Float32Array): number {
  const d = maxDiff(got, want);
  return d.maxDiff / d.maxRef;
}

const results: Record<
  string,
  {
    max_rel_error: number;
    vs_float64: number | null;
    reference_vs_float64: number | null;
    ms_sdd: number;
    ms_reference: number;
  }
> = {};
for (const [name, f, key, refKey] of [
  ['forward', forward, 'images', 'forward'],
  ['forward_backward', gradient, 'wplus_grad', 'forward_backward'],
] as const) {
  // --repeats 0: only the compared run, timed (the cpu backend takes minutes per 1024² pass).
  const { values: got, ms } = await timedOutput(() => tf.tidy(f), repeats);
  const err = relError(got, asFloat32(ref.get(key)!));
  // Both float32 results against the reference in float64 (written by the fixture tool at full size).
  const f64 = ref.get(`${key}_f64`);
  const vs64 = f64 ? relError(got, asFloat32(f64)) : null;
  const refVs64 = f64 ? relError(asFloat32(ref.get(key)!), asFloat32(f64)) : null;
  results[name] = {
    max_rel_error: err,
    vs_float64: vs64,
    reference_vs_float64: refVs64,
    ms_sdd: ms,
    ms_reference: 1000 * reference.reference_seconds[refKey],
  };
  const e64 =
    vs64 === null ? '' : `; vs float64: sdd ${vs64.toExponential(2)}, reference fp32 ${refVs64!.toExponential(2)}`;
  process.stdout.write(
    `${name.padEnd(17)} max|Δ|/max|ref| ${err.toExponential(2)}${e64}  sdd ${ms.toFixed(0)} ms  reference (${reference.device}) ${results[name].ms_reference.toFixed(0)} ms\n`,
  );
}
process.stdout.write(
  `wrote ${writeResult(`stylegan2_parity-${backend}`, { dir, batch: b, reference_device: reference.device, results })}\n`,
);
