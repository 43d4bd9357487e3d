/**
 * The `real` world: Stable Diffusion v1.x, CLIP and pytorch-fid's Inception loaded from their
 * published files (the roles in roles.ts), a folder of test images, and optionally ArcFace IR-SE50
 * for identity similarity. It has no generator or attribute judge (StyleGAN2 is part 2, #20):
 * SDEdit and DDIB run on it with `sources: real`; what needs the others says so in one line.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../../src/errors.js';
import { PROJECT_ROOT } from '../../src/runs/env.js';
import { writeFileAtomic } from '../../src/util/atomic.js';
import { sha256File } from '../../src/util/hash.js';
import { centreSquare, resizeBilinearHost } from '../../src/util/image_io.js';
import { registerFileRoles, requireWorldFiles, worldFiles, type WorldFiles } from '../../src/world/files.js';
import type { World } from '../../src/world/types.js';
import { loadStableDiffusion } from '../../src/diffusion/models/sd_folder.js';
import { unetForward } from '../../src/diffusion/models/sd_unet.js';
import { vaeDecode, vaeEncodeMoments } from '../../src/diffusion/models/sd_vae.js';
import { epsFromV } from '../../src/diffusion/schedulers/config.js';
import { alphasCumprod } from '../../src/diffusion/schedulers/schedule.js';
import { clipImageEmbeds, clipTextEmbeds, clipTextHidden, eosPositions, loadClip } from '../../src/nn/clip.js';
import { ClipTokenizer } from '../../src/nn/clip_tokenizer.js';
import { INCEPTION_SIZE, inceptionPool3 } from '../../src/nn/inception_fid.js';
import { loadInception } from '../../src/metrics/inception.js';
import { idEmbed, loadIrSe50 } from '../../src/nn/arcface.js';
import { readImage } from '../../src/metrics/features.js';
import { imageFiles, REAL_ROLES } from './roles.js';
import { REAL_PROMPTS } from './prompts.js';

registerFileRoles('real', REAL_ROLES);

/** CLIP's image normalisation (transformers' CLIPImageProcessor image_mean / image_std). */
const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/** SHA-256 of a file, cached by (path, size, mtime): a 3.4 GB UNet is hashed once, not per run. */
function fileSha256(path: string): string {
  const st = statSync(path);
  const cacheDir = join(process.env.SDD_CACHE ?? join(PROJECT_ROOT, '.cache'), 'sha256');
  const cached = join(cacheDir, createHash('sha256').update(`${path}|${st.size}|${st.mtimeMs}`).digest('hex').slice(0, 32));
  if (existsSync(cached)) return readFileSync(cached, 'utf-8');
  const hex = sha256File(path);
  mkdirSync(cacheDir, { recursive: true });
  writeFileAtomic(cached, hex);
  return hex;
}

/** The weights files behind each model, and the image set's content hash: what a run records as `models`. */
export function realFingerprint(files: WorldFiles = worldFiles()): Record<string, string> {
  requireWorldFiles('real', files, 'world real');
  const sd = files.sd;
  const weights = (dir: string, names: string[]) => names.map((n) => join(dir, n)).find((p) => existsSync(p)) ?? join(dir, names[0]);
  const h = createHash('sha256');
  for (const f of imageFiles(files.images)) h.update(f.slice(files.images.length)).update(readFileSync(f));
  return {
    'sd.unet': fileSha256(weights(join(sd, 'unet'), ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.safetensors.index.json'])),
    'sd.vae': fileSha256(weights(join(sd, 'vae'), ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.safetensors.index.json'])),
    'sd.text_encoder': fileSha256(weights(join(sd, 'text_encoder'), ['model.safetensors', 'model.safetensors.index.json'])),
    clip: fileSha256(weights(files.clip, ['model.safetensors', 'model.safetensors.index.json'])),
    inception: fileSha256(files.inception),
    ...(files.arcface ? { arcface: fileSha256(files.arcface) } : {}),
    images: h.digest('hex'),
  };
}

/** An image centre-cropped to a square and resized (bilinear, half-pixel centres) to size × size, on the host. */
function squareImage(path: string, size: number): Float32Array {
  const im = readImage(path);
  const { data, side } = centreSquare(im.data, im.height, im.width, 3);
  return side === size ? data : resizeBilinearHost(data, side, side, 3, size, size);
}

export function loadRealWorld(files: WorldFiles = worldFiles()): World {
  requireWorldFiles('real', files, 'world real');
  const sd = loadStableDiffusion(files.sd);
  const clip = loadClip(files.clip);
  const inception = loadInception(files.inception);
  const arcface = files.arcface ? loadIrSe50(files.arcface) : null;
  if (!clip.config.vision) throw new UserError(`${files.clip}: a CLIPModel (both towers) is needed for CLIP similarity, not a ${clip.config.kind}`);
  const clipTokenizer = ClipTokenizer.fromFolder(files.clip);
  const vision = clip.config.vision;
  const { unet, vae } = sd;
  const f = 2 ** (vae.config.blockOutChannels.length - 1);
  const imageSize = unet.config.sampleSize * f;
  const schedule = sd.scheduler.scheduler;
  const alphas = alphasCumprod(schedule);
  const latentShape: [number, number, number] = [unet.config.sampleSize, unet.config.sampleSize, vae.config.latentChannels];
  const images = imageFiles(files.images);
  const fingerprint = realFingerprint(files);
  const textIds = (tok: ClipTokenizer, texts: string[]) => tf.tensor2d(tok.tokenize(texts), [texts.length, 77], 'int32');
  const take = (n: number): Float32Array => {
    if (n > images.length) throw new UserError(`${files.images}: ${images.length} images, the run asks for ${n}`);
    const out = new Float32Array(n * imageSize * imageSize * 3);
    images.slice(0, n).forEach((p, i) => out.set(squareImage(p, imageSize), i * imageSize * imageSize * 3));
    return out;
  };
  return {
    name: 'real',
    fingerprint,
    imageSize,
    prompts: REAL_PROMPTS,
    sources: (_promptId, m) => take(m),
    trainImages: (n) => take(n),
    diffusion: {
      scheduler: schedule,
      alphasCumprod: alphas,
      latentShape,
      encode(x, noise) {
        const { mean, logvar } = vaeEncodeMoments(vae.params, vae.config, tf.sub(tf.mul(x, 2), 1) as tf.Tensor4D);
        const z = noise ? tf.add(mean, tf.mul(tf.exp(tf.mul(logvar, 0.5)), noise)) : mean;
        return tf.mul(z, vae.config.scalingFactor) as tf.Tensor4D;
      },
      decode: (z) => tf.clipByValue(tf.add(tf.mul(vaeDecode(vae.params, vae.config, tf.div(z, vae.config.scalingFactor) as tf.Tensor4D), 0.5), 0.5), 0, 1) as tf.Tensor4D,
      async textCondition(texts) {
        const hidden = tf.tidy(() => clipTextHidden(sd.textEncoder.params, sd.textEncoder.config.text, textIds(sd.tokenizer, texts)));
        const context = (await hidden.data()) as Float32Array;
        hidden.dispose();
        // SD v1 attends to all 77 positions, padding included: the mask is all ones.
        return { context, mask: new Float32Array(texts.length * 77).fill(1), tokens: 77, dim: sd.textEncoder.config.text.hidden };
      },
      eps(zt, t, context) {
        const out = unetForward(unet.params, unet.config, zt, t, context);
        if (sd.scheduler.prediction === 'epsilon') return out;
        const ab = tf.gather(tf.tensor1d(Float32Array.from(alphas)), tf.cast(t, 'int32')) as tf.Tensor1D;
        return epsFromV(out, zt, ab);
      },
    },
    clip: {
      id: `clip:${fingerprint.clip.slice(0, 12)}`,
      preprocess: `bilinear resize to ${vision.imageSize}² (half-pixel centres, no antialias), CLIP mean/std; transformers' CLIPImageProcessor resizes bicubic with antialias`,
      imageEmbed(x) {
        // Bilinear to the tower's size, then CLIP's normalisation. transformers' processor resizes
        // bicubic with antialiasing: scores are close to, not bit-equal with, its pipeline.
        const sized = x.shape[1] === vision.imageSize ? x : tf.image.resizeBilinear(x, [vision.imageSize, vision.imageSize], false, true);
        const normed = tf.div(tf.sub(sized, tf.tensor1d(CLIP_MEAN)), tf.tensor1d(CLIP_STD)) as tf.Tensor4D;
        return clipImageEmbeds(clip.params, clip.config, normed);
      },
      textEmbed(texts) {
        const ids = clipTokenizer.tokenize(texts);
        return clipTextEmbeds(clip.params, clip.config, tf.tensor2d(ids, [texts.length, 77], 'int32'), eosPositions(clip.config.text, ids, 77));
      },
    },
    // With the optional ArcFace: identity similarity as StyleCLIP and e4e measure it (their ID-loss crop).
    identity: arcface
      ? { id: `arcface-ir-se50:${fingerprint.arcface.slice(0, 12)}`, embed: (x) => idEmbed(arcface, tf.sub(tf.mul(x, 2), 1) as tf.Tensor4D) }
      : undefined,
    fid: {
      id: `inception:${fingerprint.inception.slice(0, 12)}`,
      resize: `bilinear ${imageSize}² → ${INCEPTION_SIZE}² (half-pixel centres, no antialias: pytorch-fid's F.interpolate)`,
      features: (x) => inceptionPool3(inception, x.shape[1] === INCEPTION_SIZE ? x : tf.image.resizeBilinear(x, [INCEPTION_SIZE, INCEPTION_SIZE], false, true)),
    },
    dispose() {
      sd.dispose();
      clip.params.dispose();
      inception.dispose();
      arcface?.dispose();
    },
  };
}
