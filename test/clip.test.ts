/**
 * CLIP text and vision towers against the reference code (fixture: tools/make_clip_fixture.py,
 * openai/CLIP's model.py with tiny random weights written in transformers' layout).
 * Tolerance: max |Δ| ≤ 1e-4 · max |reference| per output (float32 on the same float16 weights).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { asFloat32, asInt32, readSafetensors, writeSafetensors, f32 } from '../src/util/safetensors.js';
import {
  clipImageEmbeds,
  clipLogitScale,
  clipTextEmbeds,
  clipTextHidden,
  eosPositions,
  loadClip,
  type Clip,
} from '../src/nn/clip.js';
import { tmp } from './helpers.js';
import { assertClose } from './parity.js';

const FIX = join(PROJECT_ROOT, 'test', 'fixtures', 'clip_tiny');
const ref = readSafetensors(join(FIX, 'expected.safetensors')).tensors;
const want = (name: string) => asFloat32(ref.get(name)!);

const close = assertClose;

const ids = asInt32(ref.get('input_ids')!);
const [rows, len] = ref.get('input_ids')!.shape;

/** The text tower's last hidden states on the fixture's ids against the reference's. */
async function closeHidden(t: { diagnostic(m: string): void }, what: string, clip: Clip): Promise<void> {
  const hidden = clipTextHidden(clip.params, clip.config.text, tf.tensor2d(ids, [rows, len], 'int32'));
  close(t, what, (await hidden.data()) as Float32Array, want('last_hidden_state'));
}

/** A CLIPTextModel folder in `dir`: `tensors` and the fixture's text config with `extra` keys. */
function writeTextModel(
  dir: string,
  tensors: Parameters<typeof writeSafetensors>[1],
  extra: Record<string, unknown> = {},
): void {
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
  const cfg = JSON.parse(readFileSync(join(FIX, 'config.json'), 'utf-8')) as { text_config: Record<string, unknown> };
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ architectures: ['CLIPTextModel'], ...cfg.text_config, ...extra }),
  );
}

test('CLIPModel folder: text hidden states, text and image embeddings, logit scale match the reference', async (t) => {
  await initBackend('wasm');
  const clip = loadClip(FIX);
  const idT = tf.tensor2d(ids, [rows, len], 'int32');
  await closeHidden(t, 'last_hidden_state', clip);
  const eos = eosPositions(clip.config.text, ids, len);
  close(
    t,
    'text_embeds',
    (await clipTextEmbeds(clip.params, clip.config, idT, eos).data()) as Float32Array,
    want('text_embeds'),
  );
  const px = ref.get('pixel_values')!;
  const nhwc = tf.transpose(
    tf.tensor4d(asFloat32(px), px.shape as [number, number, number, number]),
    [0, 2, 3, 1],
  ) as tf.Tensor4D;
  close(
    t,
    'image_embeds',
    (await clipImageEmbeds(clip.params, clip.config, nhwc).data()) as Float32Array,
    want('image_embeds'),
  );
  close(
    t,
    'logit_scale',
    Float32Array.of(Math.log((await clipLogitScale(clip.params).data())[0])),
    want('logit_scale'),
  );
  clip.params.dispose();
});

test('CLIPTextModel folder (SD v1 text_encoder layout) gives the same hidden states', async (t) => {
  await initBackend('wasm');
  const dir = tmp('sdd-clip-text-');
  const st = readSafetensors(join(FIX, 'model.safetensors'));
  writeTextModel(dir, new Map([...st.tensors].filter(([k]) => k.startsWith('text_model.'))));
  const clip = loadClip(dir);
  assert.equal(clip.config.kind, 'CLIPTextModel');
  await closeHidden(t, 'last_hidden_state', clip);
  clip.params.dispose();
});

test('a transformers 5 CLIPTextModel (tensor names without text_model.) gives the same hidden states; both spellings at once is an error', async (t) => {
  await initBackend('wasm');
  const dir = tmp('sdd-clip-text5-');
  const st = readSafetensors(join(FIX, 'model.safetensors'));
  const stripped = new Map(
    [...st.tensors].filter(([k]) => k.startsWith('text_model.')).map(([k, v]) => [k.slice('text_model.'.length), v]),
  );
  assert.ok(stripped.has('embeddings.token_embedding.weight') && stripped.has('final_layer_norm.weight'));
  writeTextModel(dir, stripped, { dtype: 'float16', transformers_version: '5.0.0' });
  const clip = loadClip(dir);
  await closeHidden(t, 'last_hidden_state (unprefixed)', clip);
  clip.params.dispose();
  stripped.set('text_model.final_layer_norm.weight', st.tensors.get('text_model.final_layer_norm.weight')!);
  writeSafetensors(join(dir, 'model.safetensors'), stripped);
  assert.throws(
    () => loadClip(dir),
    /model\.safetensors: (text_model\.)?final_layer_norm\.weight and (text_model\.)?final_layer_norm\.weight are both text_model\.final_layer_norm\.weight/,
  );
});

test('a CLIP folder with a missing and an extra tensor, or a bad config, fails in one line', async () => {
  await initBackend('wasm');
  const dir = tmp('sdd-clip-bad-');
  copyFileSync(join(FIX, 'config.json'), join(dir, 'config.json'));
  const st = readSafetensors(join(FIX, 'model.safetensors'));
  st.tensors.delete('vision_model.post_layernorm.bias');
  st.tensors.set('text_model.encoder.layers.2.mlp.fc1.weight', f32([1], new Float32Array(1)));
  writeSafetensors(join(dir, 'model.safetensors'), st.tensors);
  assert.throws(
    () => loadClip(dir),
    /model\.safetensors: does not fit the model .*missing 1 \(vision_model\.post_layernorm\.bias\).*unexpected 1 \(text_model\.encoder\.layers\.2\.mlp\.fc1\.weight\)/,
  );
  const cfgDir = join(dir, 'cfg');
  mkdirSync(cfgDir);
  writeFileSync(
    join(cfgDir, 'config.json'),
    JSON.stringify({ architectures: ['CLIPModel'], text_config: { hidden_size: 30, num_attention_heads: 4 } }),
  );
  assert.throws(
    () => loadClip(cfgDir),
    /config\.json: text_config\.hidden_size 30 is not a multiple|config\.json: intermediate_size must be a number/,
  );
  // Every config key is read, documented as irrelevant to the features, or refused in one line.
  const base = JSON.parse(readFileSync(join(FIX, 'config.json'), 'utf-8')) as Record<string, Record<string, unknown>>;
  const keyDir = join(dir, 'keys');
  mkdirSync(keyDir);
  copyFileSync(join(FIX, 'model.safetensors'), join(keyDir, 'model.safetensors'));
  const refused: Array<[Record<string, unknown>, RegExp]> = [
    [
      { text_config: { ...base.text_config, rope_theta: 10000 } },
      /config\.json: text_config\.rope_theta: not a setting this loader implements \(10000\); refused rather than ignored/,
    ],
    [
      { vision_config: { ...base.vision_config, pruned_heads: { 0: [1] } } },
      /config\.json: vision_config\.pruned_heads \{"0":\[1\]\}: pruned attention heads are not supported/,
    ],
    [
      { text_config_dict: { hidden_size: 64 } },
      /config\.json: text_config_dict\.hidden_size 64 differs from text_config\.hidden_size 32: ambiguous/,
    ],
    [
      { use_text_projection_bias: true },
      /config\.json: use_text_projection_bias: not a setting this loader implements/,
    ],
  ];
  for (const [change, re] of refused) {
    writeFileSync(join(keyDir, 'config.json'), JSON.stringify({ ...base, ...change }));
    assert.throws(() => loadClip(keyDir), re, JSON.stringify(change));
  }
  // Older transformers wrote generation and bookkeeping settings into every config: accepted.
  const generic = {
    do_sample: false,
    num_beams: 1,
    id2label: { 0: 'LABEL_0' },
    return_dict: true,
    pruned_heads: {},
    chunk_size_feed_forward: 0,
    dropout: 0,
    _name_or_path: 'x',
  };
  writeFileSync(
    join(keyDir, 'config.json'),
    JSON.stringify({
      ...base,
      text_config: { ...base.text_config, ...generic },
      vision_config: { ...base.vision_config, ...generic },
      text_config_dict: { hidden_size: 32 },
      vision_config_dict: null,
      initializer_factor: 1,
    }),
  );
  loadClip(keyDir).params.dispose();
  const none = join(dir, 'none');
  mkdirSync(none);
  assert.throws(() => loadClip(none), /none\/config\.json: ENOENT/);
});
