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
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendFromEnv, initBackend } from '../src/backend/index.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { requirePython } from '../src/util/python.js';
import { Rng } from '../src/util/rng.js';
import { loadUNet, unetForward } from '../src/diffusion/models/sd_unet.js';
import { loadVae, vaeDecode, vaeEncodeMoments } from '../src/diffusion/models/sd_vae.js';
import { clipImageEmbeds, clipTextEmbeds, clipTextHidden, eosPositions, loadClip } from '../src/nn/clip.js';
import { CLIP_CONTEXT, ClipTokenizer } from '../src/nn/clip_tokenizer.js';
import { compareWithTorch, type ParityCase } from './torch_cases.js';

const PYTHON = requirePython(['torch', 'numpy']);
const PYDIR = join(PROJECT_ROOT, 'python');
const SD = join(PROJECT_ROOT, 'test', 'fixtures', 'sd_tiny');
const CLIP = join(PROJECT_ROOT, 'test', 'fixtures', 'clip_tiny');
// Forward outputs: measured max |Δ|/max|TS| ≤ 1.9e-6 over the cases (worst: VAE decode 1.8e-6,
// unet_linear 8e-7, text hidden 6.9e-7, UNet ε 5.8e-7), allowed 1e-5.
const FWD = 1e-5;
// Input gradients: measured ≤ 2.6e-6 (VAE decode ∂/∂z 2.6e-6, UNet ∂/∂z_t 1.5e-6, VAE encode ∂/∂x
// 1.3e-6), allowed 3e-5 (the toyfaces twins' bound, test/torch_models.test.ts).
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
  const normal = (shape: number[]) => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.normal()), shape);
  const uniform = (shape: number[], lo: number, hi: number) => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.uniform(lo, hi)), shape);
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
    { name: 'unet_eps', run: (i) => unetForward(unet.params, unet.config, x4(i, 'zt'), i.t as tf.Tensor1D, i.context as tf.Tensor3D), wrt: 'zt', rel: FWD, gradRel: GRAD },
    { name: 'unet_linear_eps', run: (i) => unetForward(unetLinear.params, unetLinear.config, x4(i, 'zt'), i.t as tf.Tensor1D, i.context as tf.Tensor3D), rel: FWD },
    { name: 'vae_mean', run: (i) => vaeEncodeMoments(vae.params, vae.config, x4(i, 'x')).mean, wrt: 'x', rel: FWD, gradRel: GRAD },
    { name: 'vae_logvar', run: (i) => vaeEncodeMoments(vae.params, vae.config, x4(i, 'x')).logvar, rel: FWD },
    { name: 'vae_decode', run: (i) => vaeDecode(vae.params, vae.config, x4(i, 'z')), wrt: 'z', rel: FWD, gradRel: GRAD },
    { name: 'clip_text_embeds', run: (i) => clipTextEmbeds(clip.params, clip.config, i.ids as tf.Tensor2D, eos), rel: FWD },
    { name: 'clip_image_embeds', run: (i) => clipImageEmbeds(clip.params, clip.config, x4(i, 'pixels')), wrt: 'pixels', rel: FWD, gradRel: GRAD },
  ];

  compareWithTorch(t, { inputs, cases, normal, script: 'sd_parity.py', args: [SD, CLIP] });
  for (const m of [unet, unetLinear, vae, te, clip]) m.params.dispose();
});

test('torch SD twins: the upstream references (diffusers, openai/CLIP) and strict loading (python/tests/test_sd.py)', () => {
  const r = spawnSync(PYTHON, ['-m', 'unittest', 'tests.test_sd'], { cwd: PYDIR, encoding: 'utf-8', env: { ...process.env, PYTHONPATH: PYDIR } });
  assert.equal(r.status, 0, `python/tests/test_sd.py failed:\n${r.stderr}`);
});
