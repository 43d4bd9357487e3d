/**
 * Stable Diffusion v1's UNet and VAE, and a DDIM loop with classifier-free guidance, against
 * diffusers v0.31.0 (fixture: tools/make_sd_fixture.py; tiny random fp16 weights in the diffusers
 * folder layout). Tolerance: max |Δ| ≤ 1e-4 · max |reference| per output (float32 on both sides).
 * Config keys: every key is implemented or refused in one line (unet_act/: timestep_post_act,
 * time_embedding_act_fn, time_embedding_dim, center_input_sample; variants.safetensors).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { asFloat32, asInt32, readSafetensors, writeSafetensors, type StTensor } from '../src/util/safetensors.js';
import { loadUNet, unetForward } from '../src/diffusion/models/sd_unet.js';
import { loadVae, vaeDecode, vaeEncodeMoments } from '../src/diffusion/models/sd_vae.js';
import { readSchedulerConfig } from '../src/diffusion/schedulers/config.js';
import { ddimFor } from '../src/diffusion/schedulers/ddim.js';
import { ddimSampleTensor } from '../src/diffusion/pipelines/sample.js';
import { loadStableDiffusion } from '../src/diffusion/models/sd_folder.js';
import { clipTextHidden } from '../src/nn/clip.js';
import { tmp } from './helpers.js';
import { assertClose, maxDiff } from './parity.js';

const FIX = join(PROJECT_ROOT, 'test', 'fixtures', 'sd_tiny');
const ref = readSafetensors(join(FIX, 'expected.safetensors')).tensors;

/** A reference NCHW tensor as NHWC. */
function nhwc(name: string): tf.Tensor4D {
  const t = ref.get(name)!;
  return tf.transpose(tf.tensor4d(asFloat32(t), t.shape as [number, number, number, number]), [0, 2, 3, 1]);
}

async function close(t: { diagnostic(m: string): void }, what: string, got: tf.Tensor, expName: string): Promise<void> {
  assertClose(t, what, await got.data(), await nhwc(expName).data());
}

const context = () =>
  tf.tensor3d(asFloat32(ref.get('context')!), ref.get('context')!.shape as [number, number, number]);
const timesteps = () => tf.tensor1d(asInt32(ref.get('unet_t')!), 'int32');

test('UNet2DConditionModel (SD v1 layout: conv projections, one head count) matches diffusers', async (t) => {
  await initBackend('wasm');
  const u = loadUNet(join(FIX, 'unet'));
  await close(t, 'unet', unetForward(u.params, u.config, nhwc('unet_sample'), timesteps(), context()), 'unet_out');
  u.params.dispose();
});

test('UNet2DConditionModel (SD v2 style: linear projections, per-block heads, 2 transformer layers) matches diffusers', async (t) => {
  await initBackend('wasm');
  const u = loadUNet(join(FIX, 'unet_linear'));
  assert.equal(u.config.linearProjection, true);
  assert.deepEqual(u.config.heads, [2, 4]);
  await close(
    t,
    'unet_linear',
    unetForward(u.params, u.config, nhwc('unet_sample'), timesteps(), context()),
    'unet_linear_out',
  );
  u.params.dispose();
});

const variants = readSafetensors(join(FIX, 'variants.safetensors')).tensors;

/** unet_act's weights under its config with some keys changed (in a temporary folder). */
function unetActWith(changes: Record<string, unknown>): string {
  const dir = tmp('sdd-unet-act-');
  cpSync(join(FIX, 'unet_act'), dir, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf-8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, ...changes }));
  return dir;
}

test('UNet config timestep_post_act / time_embedding_act_fn (silu, mish, gelu, relu, swish), time_embedding_dim and center_input_sample match diffusers', async (t) => {
  await initBackend('wasm');
  const cases: Array<[string, Record<string, unknown>]> = [
    ['unet_act_out', {}],
    ['unet_act_mish_gelu_out', { timestep_post_act: 'mish', time_embedding_act_fn: 'gelu', center_input_sample: true }],
    ['unet_act_relu_swish_out', { timestep_post_act: 'relu', time_embedding_act_fn: 'swish' }],
  ];
  for (const [name, changes] of cases) {
    const u = loadUNet(unetActWith(changes));
    assert.equal(u.config.timeEmbedDim, 48);
    const out = (await unetForward(
      u.params,
      u.config,
      nhwc('unet_sample'),
      timesteps(),
      context(),
    ).data()) as Float32Array;
    const want = tf.transpose(
      tf.tensor4d(asFloat32(variants.get(name)!), variants.get(name)!.shape as [number, number, number, number]),
      [0, 2, 3, 1],
    );
    assertClose(t, name, out, await want.data());
    u.params.dispose();
  }
  // Without the activations the output is far off: the keys matter (the issue measured 4.1e-2).
  const plain = loadUNet(unetActWith({ timestep_post_act: null, time_embedding_act_fn: null }));
  const off = maxDiff(
    await unetForward(plain.params, plain.config, nhwc('unet_sample'), timesteps(), context()).data(),
    await tf
      .transpose(
        tf.tensor4d(
          asFloat32(variants.get('unet_act_out')!),
          variants.get('unet_act_out')!.shape as [number, number, number, number],
        ),
        [0, 2, 3, 1],
      )
      .data(),
  );
  t.diagnostic(`the same weights without the activations: max |Δ| ${off.maxDiff.toExponential(2)}`);
  assert.ok(off.maxDiff > 1e-3 * off.maxRef);
  plain.params.dispose();
});

test('every UNet and VAE config key is implemented or refused in one line naming the file and key', async () => {
  await initBackend('wasm');
  const refused: Array<[Record<string, unknown>, RegExp]> = [
    [
      { timestep_post_act: 'tanh' },
      /config\.json: timestep_post_act "tanh" is not supported \(supported: null, silu, swish, mish, gelu, relu\)/,
    ],
    [{ time_embedding_act_fn: 3 }, /config\.json: time_embedding_act_fn 3 is not supported/],
    [{ time_embedding_dim: 'wide' }, /config\.json: time_embedding_dim must be a number/],
    [
      { new_setting_from_2027: 1 },
      /config\.json: new_setting_from_2027: not a setting this loader implements \(1\); refused rather than ignored/,
    ],
    [{ norm_num_groups: null }, /config\.json: norm_num_groups must be a number \(got null\)/],
    [{ flip_sin_to_cos: null }, /config\.json: flip_sin_to_cos must be true or false \(got null\)/],
    [{ act_fn: 'gelu' }, /config\.json: act_fn "gelu" is not supported \(supported: "silu", "swish"\)/],
    [{ attention_type: 'gated' }, /config\.json: attention_type "gated" is not supported/],
    [{ class_embeddings_concat: true }, /config\.json: class_embeddings_concat true is not supported/],
    [{ num_class_embeds: 10 }, /config\.json: num_class_embeds 10 is not supported/],
    [{ encoder_hid_dim_type: 'text_proj' }, /config\.json: encoder_hid_dim_type "text_proj" is not supported/],
    [
      { reverse_transformer_layers_per_block: [[1], [1]] },
      /config\.json: reverse_transformer_layers_per_block \[\[1\],\[1\]\] is not supported/,
    ],
  ];
  for (const [changes, re] of refused) assert.throws(() => loadUNet(unetActWith(changes)), re, JSON.stringify(changes));
  // Keys documented as irrelevant to inference load whatever their value.
  loadUNet(
    unetActWith({
      dropout: 0.3,
      resnet_out_scale_factor: 2,
      cross_attention_norm: 'group_norm',
      _name_or_path: 'x',
      act_fn: 'Swish',
    }),
  ).params.dispose();
  const vaeDir = tmp('sdd-vae-keys-');
  cpSync(join(FIX, 'vae'), vaeDir, { recursive: true });
  const vaeCfg = JSON.parse(readFileSync(join(vaeDir, 'config.json'), 'utf-8')) as Record<string, unknown>;
  for (const [changes, re] of [
    [{ latents_mean: [0, 0, 0, 0] }, /config\.json: latents_mean \[0,0,0,0\] is not supported/],
    [{ use_tiling: true }, /config\.json: use_tiling: not a setting this loader implements/],
  ] as Array<[Record<string, unknown>, RegExp]>) {
    writeFileSync(join(vaeDir, 'config.json'), JSON.stringify({ ...vaeCfg, ...changes }));
    assert.throws(() => loadVae(vaeDir), re);
  }
  writeFileSync(join(vaeDir, 'config.json'), JSON.stringify({ ...vaeCfg, sample_size: 1024, force_upcast: false }));
  loadVae(vaeDir).params.dispose();
});

test('AutoencoderKL encode (posterior mean) and decode match diffusers', async (t) => {
  await initBackend('wasm');
  const v = loadVae(join(FIX, 'vae'));
  await close(t, 'vae mean', vaeEncodeMoments(v.params, v.config, nhwc('vae_images')).mean, 'vae_mean');
  await close(t, 'vae decode', vaeDecode(v.params, v.config, nhwc('vae_mean')), 'vae_decoded');
  v.params.dispose();
});

test('a VAE with older diffusers attention names (query/key/value/proj_attn) loads as the same model; both layouts at once is an error', async (t) => {
  await initBackend('wasm');
  const dir = tmp('sdd-vae-old-');
  cpSync(join(FIX, 'vae'), dir, { recursive: true });
  const file = join(dir, 'diffusion_pytorch_model.safetensors');
  const st = readSafetensors(file).tensors;
  const old = new Map<string, StTensor>();
  const names: Record<string, string> = { to_q: 'query', to_k: 'key', to_v: 'value', 'to_out.0': 'proj_attn' };
  for (const [k, v] of st)
    old.set(
      k.replace(/\.attentions\.0\.(to_q|to_k|to_v|to_out\.0)\./, (_, w: string) => `.attentions.0.${names[w]}.`),
      v,
    );
  assert.ok(old.has('encoder.mid_block.attentions.0.query.weight'));
  writeSafetensors(file, old);
  const v = loadVae(dir);
  await close(t, 'vae mean (old names)', vaeEncodeMoments(v.params, v.config, nhwc('vae_images')).mean, 'vae_mean');
  v.params.dispose();
  old.set('encoder.mid_block.attentions.0.to_q.weight', st.get('encoder.mid_block.attentions.0.to_q.weight')!);
  writeSafetensors(file, old);
  assert.throws(
    () => loadVae(dir),
    /encoder\.mid_block\.attentions\.0\.(query|to_q)\.weight and .* are both encoder\.mid_block\.attentions\.0\.to_q\.weight/,
  );
});

test("SDEdit-style DDIM loop with CFG 7.5 from the folder's scheduler_config.json matches diffusers' DDIMScheduler", async (t) => {
  await initBackend('wasm');
  const u = loadUNet(join(FIX, 'unet'));
  const model = readSchedulerConfig(join(FIX, 'scheduler', 'scheduler_config.json'));
  const sched = ddimFor(model.scheduler, 10);
  const steps = [...asInt32(ref.get('ddim_timesteps')!)];
  assert.deepEqual(sched.timesteps.slice(10 - steps.length), steps);
  const init = await nhwc('ddim_init').data();
  const noise = await nhwc('ddim_noise').data();
  const start = sched.addNoise(init, noise, steps[0]);
  const shape = nhwc('ddim_init').shape;
  const ctx = context();
  const [cond, uncond] = [
    tf.slice(ctx, [0, 0, 0], [1, -1, -1]),
    tf.tensor3d(
      asFloat32(
        readSafetensors(join(PROJECT_ROOT, 'test', 'fixtures', 'clip_tiny', 'expected.safetensors')).tensors.get(
          'last_hidden_state',
        )!,
      ).subarray(2 * 77 * 32),
      [1, 77, 32],
    ),
  ];
  const both = tf.concat([uncond, cond]) as tf.Tensor3D;
  const eps = (z: tf.Tensor4D, step: number) => {
    const e = unetForward(
      u.params,
      u.config,
      tf.concat([z, z]) as tf.Tensor4D,
      tf.tensor1d([step, step], 'int32'),
      both,
    );
    const [eu, ec] = tf.split(e, 2);
    return tf.add(eu, tf.mul(tf.sub(ec, eu), 7.5)) as tf.Tensor4D;
  };
  const out = ddimSampleTensor(eps, sched, Float32Array.from(start), shape, undefined, 0, steps);
  await close(t, 'ddim loop', out, 'ddim_out');
  u.params.dispose();
});

test('an SD folder as transformers 5 saves its text parts (text_encoder without text_model., tokenizer/ with only tokenizer.json) loads as the same model', async () => {
  await initBackend('wasm');
  const dir = tmp('sdd-sd-tf5-');
  cpSync(FIX, dir, { recursive: true });
  const te = join(dir, 'text_encoder', 'model.safetensors');
  writeSafetensors(te, new Map([...readSafetensors(te).tensors].map(([k, v]) => [k.replace(/^text_model\./, ''), v])));
  rmSync(join(dir, 'tokenizer'), { recursive: true });
  cpSync(join(PROJECT_ROOT, 'test', 'fixtures', 'clip_tokenizer_json'), join(dir, 'tokenizer'), { recursive: true });
  const [old, tf5] = [loadStableDiffusion(FIX), loadStableDiffusion(dir)];
  const prompts = ['a face with a smile', 'red-haired woman (portrait) [4k] {hdr}'];
  const ids = tf5.tokenizer.tokenize(prompts);
  assert.deepEqual([...ids], [...old.tokenizer.tokenize(prompts)]);
  const hidden = (sd: typeof old) =>
    clipTextHidden(sd.textEncoder.params, sd.textEncoder.config.text, tf.tensor2d(ids, [2, 77], 'int32')).data();
  assert.deepEqual(await hidden(tf5), await hidden(old), 'the same tensors: bit-identical hidden states');
  old.dispose();
  tf5.dispose();
});
