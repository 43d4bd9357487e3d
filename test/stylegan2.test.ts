/**
 * StyleGAN2 generator against rosinality/stylegan2-pytorch's model.py (fixture:
 * tools/make_stylegan2_fixture.py; size 16, style_dim 64, 2 mapping layers, the reference's
 * 512-channel table, synthetic weights recreated here bit for bit, through tools/convert_stylegan2.py's
 * layout): the mapping network, G(W+) with the fixed noise buffers, the gradient of a fixed loss
 * w.r.t. W+, and truncated sampling from z. Tolerance: max |Δ| ≤ 1e-4 · max |reference| for each.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { sha256 } from '../src/util/hash.js';
import { asFloat32, readSafetensors, writeSafetensors } from '../src/util/safetensors.js';
import { loadStyleGan2, mapping, nLatent, synthesis, truncate, type StyleGan2Config } from '../src/nn/stylegan2.js';
import { values, writeSynthetic, type SyntheticSpec } from './synthetic_weights.js';
import { tmp } from './helpers.js';
import { assertClose } from './parity.js';

const FIX = join(PROJECT_ROOT, 'test', 'fixtures', 'stylegan2');
const spec = JSON.parse(readFileSync(join(FIX, 'weights.json'), 'utf-8')) as SyntheticSpec;
const ref = readSafetensors(join(FIX, 'expected.safetensors')).tensors;
const dir = tmp('sdd-stylegan2-');
const weights = join(dir, 'stylegan2.safetensors');
const written = writeSynthetic(weights, spec);
const config: StyleGan2Config = { size: 16, styleDim: 64, nMlp: 2, channelMultiplier: 2, lrMlp: 0.01 };
const toNchw = async (x: tf.Tensor4D) => tf.transpose(x, [0, 3, 1, 2]).data();

test('synthetic weights equal what tools/convert_stylegan2.py wrote from the .pt', () => {
  assert.equal(written.size, 52);
  for (const t of spec.tensors) assert.equal(sha256(written.get(t.name)!.data), t.sha256, t.name);
});

test('StyleGAN2 mapping, G(W+), its W+ gradient and truncated sampling match the reference', async (t) => {
  await initBackend('wasm');
  const g = loadStyleGan2(weights, config);
  assert.ok(g.latentAvg, 'latent_avg read from the file');
  const z = tf.tensor2d(values('sg2_z', [2, 64], ['uniform', Math.sqrt(3)]), [2, 64]);
  assertClose(t, 'mapping w', await mapping(g.params, config, z).data(), asFloat32(ref.get('w')!));
  const levels = nLatent(config);
  assert.equal(levels, 6);
  const wplus = tf.tensor3d(values('sg2_wplus', [2, levels, 64], ['uniform', 1]), [2, levels, 64]);
  assertClose(t, 'G(W+)', await toNchw(synthesis(g.params, config, wplus)), asFloat32(ref.get('images')!));
  const probe = tf.transpose(
    tf.tensor4d(values('sg2_probe', [2, 3, 16, 16], ['uniform', 1]), [2, 3, 16, 16]),
    [0, 2, 3, 1],
  );
  const grad = tf.grad((w: tf.Tensor) => tf.sum(tf.mul(synthesis(g.params, config, w as tf.Tensor3D), probe)))(wplus);
  assertClose(t, 'd loss / d W+', await grad.data(), asFloat32(ref.get('wplus_grad')!));
  const w = truncate(mapping(g.params, config, z), g.latentAvg!, 0.7);
  const tw = tf.tile(tf.reshape(w, [2, 1, 64]), [1, levels, 1]) as tf.Tensor3D;
  assertClose(t, 'G(truncated w)', await toNchw(synthesis(g.params, config, tw)), asFloat32(ref.get('truncated')!));
  g.dispose();
});

test('a generator file with a missing, extra or wrong FIR tensor is refused in one line', async () => {
  await initBackend('wasm');
  const drop = (name: string) => {
    const m = new Map(written);
    m.delete(name);
    return m;
  };
  const cases: [string, Map<string, ReturnType<typeof written.get> & object>, RegExp][] = [
    ['missing', drop('convs.2.conv.weight'), /missing 1 \(convs\.2\.conv\.weight\)/],
    ['extra', new Map([...written, ['mystery', written.get('latent_avg')!]]), /unexpected 1 \(mystery\)/],
    [
      'fir',
      new Map([...written, ['convs.0.conv.blur.kernel', written.get('noises.noise_0')!]]),
      /is not the \[1, 3, 3, 1\] FIR kernel/,
    ],
  ];
  for (const [name, tensors, re] of cases) {
    const f = join(dir, `${name}.safetensors`);
    writeSafetensors(f, tensors);
    assert.throws(
      () => loadStyleGan2(f, config),
      (e: Error) => re.test(e.message) && !e.message.includes('\n'),
      name,
    );
  }
});
