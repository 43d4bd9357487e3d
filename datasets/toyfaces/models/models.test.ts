/**
 * The zoo's building blocks against independent formulations: StyleGAN2 modulated conv against
 * explicit per-sample weights, attention masking, the tokenizer, and the CFG text condition.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { backendFromEnv, initBackend } from '../../../src/backend/index.js';
import { Params } from '../../../src/nn/params.js';
import { layerNorm, multiHeadAttention } from '../../../src/nn/layers.js';
import { modConv } from './stylegen.js';
import { CLIP_DEFAULT, textCondition } from './clip.js';
import { MAX_TOKENS, PAD, tokenize, tokenizeBatch, UNK, VOCAB } from '../tokenizer.js';
import { EDIT_PROMPTS, caption } from '../captions.js';
import { sampleFace } from '../attributes.js';

await initBackend(backendFromEnv());

test('modulated conv equals a conv with per-sample scaled, demodulated weights (rel. err ≤ 1e-4)', async () => {
  const p = new Params(3);
  const x = tf.randomNormal([2, 5, 5, 6], 0, 1, 'float32', 1) as tf.Tensor4D;
  const w = tf.randomNormal([2, 8], 0, 1, 'float32', 2) as tf.Tensor2D;
  const got = modConv(p, 'm', x, w, 4);
  const W = p.vars.get('m.weight')!;
  const s = tf.add(tf.add(tf.matMul(w, p.vars.get('m.affine.weight')!), p.vars.get('m.affine.bias')!), 1);
  for (let b = 0; b < 2; b++) {
    // Reference: W'[k,i,o] = W[k,i,o]·s[b,i] / ‖W[·,·,·,o]·s[b,·]‖, then an ordinary conv of sample b.
    const ref = tf.tidy(() => {
      const wb = tf.mul(W, tf.reshape(tf.slice(s, [b, 0], [1, 6]), [1, 1, 6, 1]));
      const norm = tf.sqrt(tf.add(tf.sum(tf.square(wb), [0, 1, 2], true), 1e-8));
      return tf.conv2d(tf.slice(x, [b, 0, 0, 0], [1, 5, 5, 6]), tf.div(wb, norm) as tf.Tensor4D, 1, 'same');
    });
    const g = await tf.slice(got, [b, 0, 0, 0], [1, 5, 5, 4]).data();
    const r = await ref.data();
    const scale = Math.max(...r.map(Math.abs));
    r.forEach((v, i) => assert.ok(Math.abs(v - g[i]) <= 1e-4 * scale, `sample ${b} element ${i}: ${g[i]} vs ${v}`));
  }
  p.dispose();
});

test('attention ignores masked keys; layerNorm normalises the last axis', async () => {
  const p = new Params(1);
  const x = tf.randomNormal([2, 3, 8], 0, 1, 'float32', 4);
  const ctx = tf.randomNormal([2, 5, 8], 0, 1, 'float32', 5);
  const mask = tf.tensor2d([1, 1, 0, 0, 0, 1, 1, 1, 1, 0], [2, 5]);
  const a = await multiHeadAttention(p, 'att', x, ctx, 2, mask).data();
  // Change only masked positions of the context: the output must not move.
  const noise = tf.mul(tf.sub(1, tf.expandDims(mask, 2)), tf.randomNormal([2, 5, 8], 0, 10, 'float32', 6));
  const b = await multiHeadAttention(p, 'att', x, tf.add(ctx, noise), 2, mask).data();
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-5, `${v} vs ${b[i]}`));
  const n = layerNorm(p, 'ln', tf.randomNormal([4, 16], 3, 5, 'float32', 7));
  const { mean, variance } = tf.moments(n, -1);
  (await mean.data()).forEach((m) => assert.ok(Math.abs(m) < 1e-5));
  (await variance.data()).forEach((v) => assert.ok(Math.abs(v - 1) < 1e-3));
  p.dispose();
});

test('tokenizer: every caption word is in the vocabulary; padding, truncation, unknown words', () => {
  for (let s = 0; s < 200; s++) assert.ok(!tokenize(caption(sampleFace(s).attrs)).includes(UNK));
  for (const e of EDIT_PROMPTS)
    assert.ok(!tokenize(e.text).includes(UNK) && !tokenize(e.sourceText).includes(UNK), e.id);
  const t = tokenize('A face with RED hair!');
  assert.deepEqual(
    [...t.slice(0, 5)].map((i) => VOCAB[i - 2]),
    ['a', 'face', 'with', 'red', 'hair'],
  );
  assert.ok(t.slice(5).every((i) => i === PAD));
  assert.equal(tokenize('a purple face')[1], UNK);
  assert.equal(tokenize(Array(40).fill('face').join(' ')).length, MAX_TOKENS);
});

test('text condition: hidden states per token; the empty prompt attends to every position', async () => {
  const p = new Params(0);
  const { context, mask } = await textCondition(p, CLIP_DEFAULT, tokenizeBatch(['a face with red hair', '']), 2);
  assert.equal(context.length, 2 * MAX_TOKENS * CLIP_DEFAULT.textWidth);
  assert.ok(context.every(Number.isFinite));
  assert.deepEqual([...mask.slice(0, MAX_TOKENS)], [1, 1, 1, 1, 1, ...Array(MAX_TOKENS - 5).fill(0)]);
  assert.ok(mask.slice(MAX_TOKENS).every((v) => v === 1));
  p.dispose();
});

test("VAE perceptual term: 0 for a perfect reconstruction, 1 − cos of the frozen CLIP's embeddings otherwise; its gradient reaches the reconstruction", async () => {
  const { perceptualDistance } = await import('./perceptual.js');
  const { clipImageEmbed } = await import('./clip.js');
  const { frozenParams } = await import('../zoo/store.js');
  const { configOf } = await import('./configs.js');
  const clip = frozenParams('clip');
  const cfg = configOf('clip', clip.architecture);
  const x = tf.randomUniform([3, 32, 32, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
  const out = tf.randomUniform([3, 32, 32, 3], 0, 1, 'float32', 6) as tf.Tensor4D;
  assert.ok(Math.abs((await perceptualDistance(x, x, clip.params, cfg).data())[0]) < 1e-6);
  // Reference: the same embeddings, cosine written out per row.
  const ex = (await clipImageEmbed(clip.params, x, cfg).array()) as number[][];
  const eo = (await clipImageEmbed(clip.params, out, cfg).array()) as number[][];
  const cos = ex.map((a, i) => a.reduce((s, v, k) => s + v * eo[i][k], 0) / Math.hypot(...a) / Math.hypot(...eo[i]));
  const want = cos.reduce((s, c) => s + (1 - c), 0) / cos.length;
  const got = (await perceptualDistance(x, out, clip.params, cfg).data())[0];
  assert.ok(want > 1e-3 && Math.abs(got - want) <= 1e-4 * want, `${got} vs ${want}`);
  const go = tf.grad((b: tf.Tensor) => perceptualDistance(x, b as tf.Tensor4D, clip.params, cfg))(out);
  assert.ok((await tf.max(tf.abs(go)).data())[0] > 0, 'no gradient at the reconstruction');
});
