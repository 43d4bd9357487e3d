/**
 * Full-size parity: every real-checkpoint model at its published size (SD v1-4 UNet and VAE, CLIP
 * ViT-L/14 text tower, CLIP ViT-B/32), loaded through sdd-bench's loaders from the folders
 * tools/make_full_parity.py wrote, run on its fixed inputs and compared with the reference outputs
 * (max |Δ| / max |ref| per output), with the time per forward beside the reference's.
 *
 *   node --import tsx bench/full_parity.ts DIR [--backend cpu|wasm|webgpu] [--repeats 3] [--only unet,vae_decode,…]
 *
 * Writes bench/results/full_parity-<backend>[-<only>].json. The SD UNet's 3.4 GB of float32 weights exceed
 * wasm's 4 GB address space together with the rest: on CPU run it with --backend cpu.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.js';
import { loadUNet, unetForward } from '../src/diffusion/models/sd_unet.js';
import { loadVae, vaeDecode, vaeEncodeMoments } from '../src/diffusion/models/sd_vae.js';
import { clipImageEmbeds, clipTextEmbeds, clipTextHidden, eosPositions, loadClip } from '../src/nn/clip.js';
import { asFloat32, asInt32, readSafetensors, type StTensor } from '../src/util/safetensors.js';
import { maxDiff } from '../test/parity.js';
import { argValue, timedOutput, writeResult } from './common.js';

const dir = process.argv[2];
if (!dir || dir.startsWith('--')) throw new Error('usage: bench/full_parity.ts DIR [--backend cpu|wasm|webgpu]');
const backend = argValue('backend', 'cpu');
const repeats = Number(argValue('repeats', '3'));
const only = argValue('only', '').split(',').filter(Boolean);
const wanted = (name: string) => only.length === 0 || only.includes(name);
await initBackend(backend as never);
const ref = readSafetensors(join(dir, 'expected.safetensors')).tensors;
const reference = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf-8')) as {
  reference_seconds_per_forward: Record<string, number>;
  device: string;
  latent: number;
};
const nchw = (t: StTensor) =>
  tf.transpose(tf.tensor4d(asFloat32(t), t.shape as [number, number, number, number]), [0, 2, 3, 1]) as tf.Tensor4D;
const results: Record<string, { max_rel_error: number; ms_sdd: number; ms_reference: number }> = {};

/** Runs `f` (timed, median of `repeats` after a warm-up), compares its output with the reference. */
async function check(name: string, refName: string, f: () => tf.Tensor, isNchw = true): Promise<void> {
  if (!wanted(name)) return;
  // --repeats 0: the compared forward alone is timed (the cpu backend takes minutes per UNet forward).
  const { values: got, ms } = await timedOutput(() => tf.tidy(f), repeats);
  const want = isNchw ? await nchw(ref.get(refName)!).data() : asFloat32(ref.get(refName)!);
  const d = maxDiff(got, want);
  results[name] = {
    max_rel_error: d.maxDiff / d.maxRef,
    ms_sdd: ms,
    ms_reference: 1000 * reference.reference_seconds_per_forward[name],
  };
  process.stdout.write(
    `${name.padEnd(16)} max|Δ|/max|ref| ${(d.maxDiff / d.maxRef).toExponential(2)}  sdd ${ms.toFixed(0)} ms  reference (${reference.device}) ${results[name].ms_reference.toFixed(0)} ms\n`,
  );
}

const idsT = ref.get('input_ids')!;
const ids = asInt32(idsT);
const [rows, len] = idsT.shape;
// Each part loaded on its own (the folder's loader would hold all of them): only what --only asks for is in memory.
if (wanted('text_encoder')) {
  const te = loadClip(join(dir, 'sd', 'text_encoder'));
  await check(
    'text_encoder',
    'text_hidden',
    () => clipTextHidden(te.params, te.config.text, tf.tensor2d(ids, [rows, len], 'int32')),
    false,
  );
  te.params.dispose();
}
if (wanted('unet')) {
  const unet = loadUNet(join(dir, 'sd', 'unet'));
  const context = tf.tensor3d(asFloat32(ref.get('text_hidden')!).subarray(0, len * 768), [1, len, 768]);
  await check('unet', 'unet_out', () =>
    unetForward(unet.params, unet.config, nchw(ref.get('unet_sample')!), tf.tensor1d([500], 'int32'), context),
  );
  unet.params.dispose();
}
if (wanted('vae_encode') || wanted('vae_decode')) {
  const vae = loadVae(join(dir, 'sd', 'vae'));
  await check(
    'vae_encode',
    'vae_mean',
    () => vaeEncodeMoments(vae.params, vae.config, nchw(ref.get('vae_images')!)).mean,
  );
  await check('vae_decode', 'vae_decoded', () => vaeDecode(vae.params, vae.config, nchw(ref.get('vae_mean')!)));
  vae.params.dispose();
}
if (wanted('clip_b32_image') || wanted('clip_b32_text')) {
  const clip = loadClip(join(dir, 'clip_b32'));
  await check(
    'clip_b32_image',
    'clip_image_embeds',
    () => clipImageEmbeds(clip.params, clip.config, nchw(ref.get('clip_pixels')!)),
    false,
  );
  await check(
    'clip_b32_text',
    'clip_text_embeds',
    () =>
      clipTextEmbeds(
        clip.params,
        clip.config,
        tf.tensor2d(ids, [rows, len], 'int32'),
        eosPositions(clip.config.text, ids, len),
      ),
    false,
  );
  clip.params.dispose();
}
const path = writeResult(`full_parity-${backend}${only.length ? `-${only.join('-')}` : ''}`, {
  dir,
  latent: reference.latent,
  reference_device: reference.device,
  results,
});
process.stdout.write(`wrote ${path}\n`);
