/**
 * ArcFace IR-SE50 against the reference model code (fixture: tools/make_arcface_fixture.py,
 * TreB1eN/InsightFace_Pytorch's Backbone(50, 0.6, 'ir_se') at full size, synthetic weights and
 * inputs recreated here bit for bit): embeddings of 112² faces, the ID-loss embedding of a 256²
 * image (crop + adaptive pooling, as e4e and StyleCLIP), and the gradient of a fixed loss w.r.t.
 * that image. Tolerance: max |Δ| ≤ 1e-4 · max |reference| for all three (float32 through 50
 * layers and two adaptive pools).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { sha256 } from '../src/util/hash.js';
import { asFloat32, readSafetensors } from '../src/util/safetensors.js';
import { adaptivePoolMatrix, idEmbed, irSe50 } from '../src/nn/arcface.js';
import { loadTorchWeights } from '../src/nn/torch_weights.js';
import { values, writeSynthetic, type SyntheticSpec } from './synthetic_weights.js';
import { tmp } from './helpers.js';
import { assertClose } from './parity.js';

const FIX = join(PROJECT_ROOT, 'test', 'fixtures', 'arcface');
const spec = JSON.parse(readFileSync(join(FIX, 'weights.json'), 'utf-8')) as SyntheticSpec;
const ref = readSafetensors(join(FIX, 'expected.safetensors')).tensors;
const weights = join(tmp('sdd-arcface-'), 'ir_se50.safetensors');
const written = writeSynthetic(weights, spec);
const nchwToNhwc = (v: Float32Array, shape: [number, number, number, number]) =>
  tf.transpose(tf.tensor4d(v, shape), [0, 2, 3, 1]) as tf.Tensor4D;

test('synthetic weights equal what tools/convert_ir_se50.py wrote from the .pth', () => {
  assert.equal(written.size, 343);
  for (const t of spec.tensors) assert.equal(sha256(written.get(t.name)!.data), t.sha256, t.name);
});

test('AdaptiveAvgPool bins: 188 → 112 windows of 2 or 3, each row sums to 1', () => {
  const a = adaptivePoolMatrix(188, 112);
  for (let i = 0; i < 112; i++) {
    const row = a.subarray(i * 188, (i + 1) * 188);
    assert.ok(Math.abs(row.reduce((s, v) => s + v, 0) - 1) < 1e-6);
    assert.ok([2, 3].includes(row.filter((v) => v > 0).length));
  }
});

test('IR-SE50 embeddings, the ID-loss embedding and its input gradient match the reference', async (t) => {
  await initBackend('wasm');
  const p = loadTorchWeights(weights);
  p.verify((q) => irSe50(q, tf.zeros([1, 112, 112, 3])));
  const faces = nchwToNhwc(values('faces', [3, 3, 112, 112], ['uniform', 1]), [3, 3, 112, 112]);
  assertClose(t, 'embeddings', await irSe50(p, faces).data(), asFloat32(ref.get('embeddings')!));
  const image = nchwToNhwc(values('id_images', [1, 3, 256, 256], ['uniform', 1]), [1, 3, 256, 256]);
  assertClose(t, 'id embedding', await idEmbed(p, image).data(), asFloat32(ref.get('id_embeddings')!));
  const probe = tf.tensor2d(values('id_probe', [1, 512], ['uniform', 1]), [1, 512]);
  const grad = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(idEmbed(p, x as tf.Tensor4D), probe)))(image);
  const gradNchw = await tf.transpose(grad, [0, 3, 1, 2]).data();
  assertClose(t, 'd loss / d image', gradNchw, asFloat32(ref.get('id_grad')!));
  p.dispose();
});
