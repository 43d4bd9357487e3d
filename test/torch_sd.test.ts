/**
 * The torch twins of Stable Diffusion's models (python/sdd_torch/models/sd_unet.py, sd_vae.py,
 * clip_text.py) against the TypeScript models they port (src/diffusion/models/sd_unet.ts,
 * sd_vae.ts, src/nn/clip.ts), each side loading the same published-layout folders with its own
 * loader: test/fixtures/sd_tiny (UNet in SD v1 and SD v2 style, VAE, CLIPTextModel text encoder)
 * and test/fixtures/clip_tiny (CLIPModel, both towers). Seeded inputs from our RNG; our
 * tokenizer's ids. Cases: the text encoder's hidden states, UNet ε with that text context at float
 * timesteps, the VAE posterior mean and log-variance and decode, CLIP text and image embeddings,
 * and the input gradients of a fixed random projection ⟨R, f(x)⟩ through the UNet (∂/∂z_t) and
 * the VAE (∂/∂x, ∂/∂z), what SDD's guidance and the baselines backpropagate.
 * The paper world twin (python/sdd_torch/worlds/paper.py) against sd_parts.ts's diffusionOf and
 * clipOf on paper-random-tiny's architectures, the TS random weights written in PyTorch's layout
 * (what the harness would hand over): encode (with and without noise), decode, text condition, ε,
 * CLIP image (at and off the tower's size) and text embeddings, with input gradients.
 * Then the twins against the upstream references and their strictness (python/tests/test_sd.py:
 * diffusers and openai/CLIP outputs of the fixtures, max |Δ| ≤ 1e-4 · max |ref| as the TS tests).
 *
 * Tolerance: max |torch − TS| ≤ rel · max |TS| per output (test/parity.ts assertClose). Both run
 * float32 and differ only in summation order and libm, so ~1e-6 relative is expected. Measured on
 * this machine (wasm backend, torch 1.13 CPU): see FWD / GRAD.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendFromEnv, initBackend } from '../src/backend/index.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { requirePython } from '../src/util/python.js';
import { Rng } from '../src/util/rng.js';
import { loadUNet, parseUNetConfig, randomUNet, unetForward } from '../src/diffusion/models/sd_unet.js';
import { loadVae, parseVaeConfig, randomVae, vaeDecode, vaeEncodeMoments } from '../src/diffusion/models/sd_vae.js';
import {
  clipImageEmbeds,
  clipTextEmbeds,
  clipTextHidden,
  eosPositions,
  loadClip,
  parseClipConfig,
  randomClip,
} from '../src/nn/clip.js';
import { CLIP_CONTEXT, ClipTokenizer } from '../src/nn/clip_tokenizer.js';
import { ConfigReader, type Json } from '../src/diffusion/models/diffusers_config.js';
import { parseSchedulerConfig } from '../src/diffusion/schedulers/config.js';
import type { Params } from '../src/nn/params.js';
import { writeSafetensors } from '../src/util/safetensors.js';
import { torchLayout } from '../src/nn/torch_weights.js';
import { clipOf, diffusionOf, type SdParts } from '../src/world/sd_parts.js';
import { tmp } from './helpers.js';
import { compareWithTorch, type ParityCase } from './torch_cases.js';

const PYTHON = requirePython(['torch', 'numpy']);
const PYDIR = join(PROJECT_ROOT, 'python');
const SD = join(PROJECT_ROOT, 'test', 'fixtures', 'sd_tiny');
const CLIP = join(PROJECT_ROOT, 'test', 'fixtures', 'clip_tiny');
// Forward outputs: measured max |Δ|/max|TS| ≤ 1.9e-6 over the cases (worst: VAE decode 1.8e-6,
// world decode 1.25e-6, unet_linear 8e-7, text hidden 6.9e-7, UNet ε 5.8e-7), allowed 1e-5.
const FWD = 1e-5;
// Input gradients: measured ≤ 2.6e-6 (VAE decode ∂/∂z 2.6e-6, world ε ∂/∂z_t 1.6e-6, UNet ∂/∂z_t
// 1.5e-6, VAE encode ∂/∂x 1.3e-6), allowed 3e-5 (the toyfaces twins' bound, test/torch_models.test.ts).
const GRAD = 3e-5;

await initBackend(backendFromEnv());

const PROMPTS = ['a photo of a face with blond hair', '', 'smiling, wearing glasses!', 'a face'];
const B = PROMPTS.length;

test('torch twins of the SD UNet, VAE and CLIP towers match the TS models on the tiny folders (outputs and input gradients)', async (t) => {
  const unet = loadUNet(join(SD, 'unet'));
  const unetLinear = loadUNet(join(SD, 'unet_linear'));
  const vae = loadVae(join(SD, 'vae'));
  const te = loadClip(join(SD, 'text_encoder'));
  const clip = loadClip(CLIP);
  const tokenizer = ClipTokenizer.fromFolder(join(SD, 'tokenizer'));
  const ids = tokenizer.tokenize(PROMPTS);
  const rng = new Rng(20261205);
  const normal = (shape: number[]) =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.normal()),
      shape,
    );
  const uniform = (shape: number[], lo: number, hi: number) =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.uniform(lo, hi)),
      shape,
    );
  const vision = clip.config.vision!;
  const inputs: Record<string, tf.Tensor> = {
    ids: tf.tensor2d(ids, [B, CLIP_CONTEXT], 'int32'),
    zt: normal([B, 8, 8, 4]),
    // Float timesteps as the World's eps takes them (a fractional one too).
    t: tf.tensor1d([999, 640.5, 250, 1]),
    x: uniform([2, 16, 16, 3], -1, 1),
    z: normal([2, 4, 4, 4]),
    pixels: normal([2, vision.imageSize, vision.imageSize, 3]),
  };
  inputs.context = clipTextHidden(te.params, te.config.text, inputs.ids as tf.Tensor2D);
  const eos = eosPositions(clip.config.text, ids, CLIP_CONTEXT);
  const x4 = (i: Record<string, tf.Tensor>, k: string) => i[k] as tf.Tensor4D;
  const cases: ParityCase[] = [
    { name: 'text_hidden', run: (i) => clipTextHidden(te.params, te.config.text, i.ids as tf.Tensor2D), rel: FWD },
    {
      name: 'unet_eps',
      run: (i) => unetForward(unet.params, unet.config, x4(i, 'zt'), i.t as tf.Tensor1D, i.context as tf.Tensor3D),
      wrt: 'zt',
      rel: FWD,
      gradRel: GRAD,
    },
    {
      name: 'unet_linear_eps',
      run: (i) =>
        unetForward(unetLinear.params, unetLinear.config, x4(i, 'zt'), i.t as tf.Tensor1D, i.context as tf.Tensor3D),
      rel: FWD,
    },
    {
      name: 'vae_mean',
      run: (i) => vaeEncodeMoments(vae.params, vae.config, x4(i, 'x')).mean,
      wrt: 'x',
      rel: FWD,
      gradRel: GRAD,
    },
    { name: 'vae_logvar', run: (i) => vaeEncodeMoments(vae.params, vae.config, x4(i, 'x')).logvar, rel: FWD },
    {
      name: 'vae_decode',
      run: (i) => vaeDecode(vae.params, vae.config, x4(i, 'z')),
      wrt: 'z',
      rel: FWD,
      gradRel: GRAD,
    },
    {
      name: 'clip_text_embeds',
      run: (i) => clipTextEmbeds(clip.params, clip.config, i.ids as tf.Tensor2D, eos),
      rel: FWD,
    },
    {
      name: 'clip_image_embeds',
      run: (i) => clipImageEmbeds(clip.params, clip.config, x4(i, 'pixels')),
      wrt: 'pixels',
      rel: FWD,
      gradRel: GRAD,
    },
  ];

  compareWithTorch(t, { inputs, cases, normal, script: 'sd_parity.py', args: [SD, CLIP] });
  for (const m of [unet, unetLinear, vae, te, clip]) m.params.dispose();
});

const TINY = join(PROJECT_ROOT, 'datasets', 'paper', 'configs', 'tiny');
const tinyConfig = (name: string): { file: string; json: Json; text: string } => {
  const file = join(TINY, `${name}.json`);
  const text = readFileSync(file, 'utf-8');
  return { file, json: JSON.parse(text) as Json, text };
};

test("the paper world twin (python/sdd_torch/worlds/paper.py) matches sd_parts.ts on paper-random-tiny's SD and CLIP architectures with the same weights", async (t) => {
  // The tiny world's architectures with seeded random weights (world.ts randomModels' seeds).
  const cfg = {
    unet: tinyConfig('unet'),
    vae: tinyConfig('vae'),
    text_encoder: tinyConfig('text_encoder'),
    clip: tinyConfig('clip'),
  };
  const sched = tinyConfig('scheduler');
  const tokenizer = ClipTokenizer.fromFolder(join(PROJECT_ROOT, 'datasets', 'paper', 'tokenizer'));
  const sd: SdParts = {
    unet: randomUNet(parseUNetConfig(new ConfigReader(cfg.unet.file, cfg.unet.json)), 20231),
    vae: randomVae(parseVaeConfig(new ConfigReader(cfg.vae.file, cfg.vae.json)), 20232),
    textEncoder: randomClip(parseClipConfig(cfg.text_encoder.file, cfg.text_encoder.json), 20233),
    tokenizer,
    scheduler: parseSchedulerConfig(sched.text, sched.file),
  };
  const clip = randomClip(parseClipConfig(cfg.clip.file, cfg.clip.json), 20234);
  const dm = diffusionOf(sd);
  const cm = clipOf(clip, tokenizer, 'clip:test');
  // Each model's weights written in PyTorch's layout; the specs a manifest's engine.models would hold.
  const dir = tmp('sdd-torch-paper-');
  const stores: Record<string, Params> = {
    unet: sd.unet.params,
    vae: sd.vae.params,
    text_encoder: sd.textEncoder.params,
    clip: clip.params,
  };
  const models: Record<string, unknown> = {};
  for (const [name, params] of Object.entries(stores)) {
    const file = join(dir, `${name}.safetensors`);
    writeSafetensors(file, await torchLayout(params));
    models[name] = {
      weights: file,
      sha256: null,
      architecture: { config: cfg[name as keyof typeof cfg].json, prediction_type: sd.scheduler.prediction },
    };
  }
  const specs = join(dir, 'models.json');
  writeFileSync(specs, JSON.stringify({ world: 'paper-random-tiny', models }));

  const rng = new Rng(20261206);
  const normal = (shape: number[]) =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.normal()),
      shape,
    );
  const uniform = (shape: number[]) =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.next()),
      shape,
    );
  const [h, w, c] = dm.latentShape;
  const size = h * 4;
  const cond = await dm.textCondition(PROMPTS);
  const inputs: Record<string, tf.Tensor> = {
    ids: tf.tensor2d(tokenizer.tokenize(PROMPTS), [B, CLIP_CONTEXT], 'int32'),
    x: uniform([B, size, size, 3]),
    x48: uniform([2, 48, 48, 3]),
    noise: normal([B, h, w, c]),
    z: normal([B, h, w, c]),
    zt: normal([B, h, w, c]),
    t: tf.tensor1d([999, 640.5, 250, 1]),
    context: tf.tensor3d(cond.context, [B, cond.tokens, cond.dim]),
    mask: tf.tensor2d(cond.mask, [B, cond.tokens]),
  };
  const x4 = (i: Record<string, tf.Tensor>, k: string) => i[k] as tf.Tensor4D;
  const cases: ParityCase[] = [
    { name: 'encode', run: (i) => dm.encode(x4(i, 'x')), wrt: 'x', rel: FWD, gradRel: GRAD },
    { name: 'encode_noise', run: (i) => dm.encode(x4(i, 'x'), x4(i, 'noise')), wrt: 'x', rel: FWD, gradRel: GRAD },
    { name: 'decode', run: (i) => dm.decode(x4(i, 'z')), wrt: 'z', rel: FWD, gradRel: GRAD },
    { name: 'text_context', run: (i) => i.context, rel: FWD },
    { name: 'text_mask', run: (i) => i.mask, rel: 0 },
    {
      name: 'eps',
      run: (i) => dm.eps(x4(i, 'zt'), i.t as tf.Tensor1D, i.context as tf.Tensor3D, i.mask as tf.Tensor2D),
      wrt: 'zt',
      rel: FWD,
      gradRel: GRAD,
    },
    { name: 'clip_image', run: (i) => cm.imageEmbed(x4(i, 'x')), wrt: 'x', rel: FWD, gradRel: GRAD },
    // Forward only: tfjs's ResizeBilinearGrad ignores halfPixelCenters (cpu and wasm: its gradient
    // of a 6→4 resize is off by 0.8 from the exact one, of 8→4 by 1.7), so TS's gradient through
    // clipOf's resize (and world.ts styleOf's 1024→512) is wrong; torch's autograd is exact.
    { name: 'clip_image_resized', run: (i) => cm.imageEmbed(x4(i, 'x48')), rel: FWD },
    { name: 'clip_text', run: () => cm.textEmbed(PROMPTS), rel: FWD },
  ];
  compareWithTorch(t, { inputs, cases, normal, script: 'sd_parity.py', args: ['--world', specs] });
  for (const p of [...Object.values(stores)]) p.dispose();
});

test('torch SD twins: the upstream references (diffusers, openai/CLIP) and strict loading (python/tests/test_sd.py)', () => {
  const r = spawnSync(PYTHON, ['-m', 'unittest', 'tests.test_sd'], {
    cwd: PYDIR,
    encoding: 'utf-8',
    env: { ...process.env, PYTHONPATH: PYDIR },
  });
  assert.equal(r.status, 0, `python/tests/test_sd.py failed:\n${r.stderr}`);
});
