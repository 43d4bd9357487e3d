/**
 * The `real` world: Stable Diffusion v1.x, CLIP and pytorch-fid's Inception loaded from their
 * published files (the roles in roles.ts), a folder of test images, and optionally ArcFace IR-SE50
 * for identity similarity. It has no generator or attribute judge (StyleGAN2 is part 2, #20):
 * SDEdit and DDIB run on it with `sources: real`; what needs the others says so in one line.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { UserError } from '../../src/errors.js';
import { PROJECT_ROOT } from '../../src/util/env.js';
import { writeFileAtomic } from '../../src/util/atomic.js';
import { sha256File } from '../../src/util/hash.js';
import { centreSquare, resizeBilinearHost } from '../../src/util/image_io.js';
import { requireWorldFiles, worldFiles, type WorldFiles } from '../../src/world/files.js';
import type { World, WorldDef } from '../../src/world/types.js';
import { loadStableDiffusion } from '../../src/diffusion/models/sd_folder.js';
import { loadClip } from '../../src/nn/clip.js';
import { ClipTokenizer } from '../../src/nn/clip_tokenizer.js';
import { loadInception } from '../../src/metrics/inception.js';
import { loadIrSe50 } from '../../src/nn/arcface.js';
import { arcfaceOf, clipOf, diffusionOf, inceptionFidOf, sdImageSize } from '../../src/world/sd_parts.js';
import { readImage } from '../../src/metrics/features.js';
import { imageFiles, REAL_ROLES } from './roles.js';
import { REAL_PROMPTS } from './prompts.js';

/** SHA-256 of a file, cached by (path, size, mtime): a 3.4 GB UNet is hashed once, not per run. */
export function fileSha256(path: string): string {
  const st = statSync(path);
  const cacheDir = join(process.env.SDD_CACHE ?? join(PROJECT_ROOT, '.cache'), 'sha256');
  const cached = join(
    cacheDir,
    createHash('sha256').update(`${path}|${st.size}|${st.mtimeMs}`).digest('hex').slice(0, 32),
  );
  if (existsSync(cached)) return readFileSync(cached, 'utf-8');
  const hex = sha256File(path);
  mkdirSync(cacheDir, { recursive: true });
  writeFileAtomic(cached, hex);
  return hex;
}

/** A folder's weights file (single or sharded index), hashed. */
const weightsSha = (dir: string, names: string[]) =>
  fileSha256(names.map((n) => join(dir, n)).find((p) => existsSync(p)) ?? join(dir, names[0]));
const DIFFUSERS = ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.safetensors.index.json'];
const TRANSFORMERS = ['model.safetensors', 'model.safetensors.index.json'];

/** The hashes of a Stable Diffusion folder's three weights files and a CLIP folder's. */
export function sdClipFingerprint(sd: string, clip: string): Record<string, string> {
  return {
    'sd.unet': weightsSha(join(sd, 'unet'), DIFFUSERS),
    'sd.vae': weightsSha(join(sd, 'vae'), DIFFUSERS),
    'sd.text_encoder': weightsSha(join(sd, 'text_encoder'), TRANSFORMERS),
    clip: weightsSha(clip, TRANSFORMERS),
  };
}

/** The weights files behind each model, and the image set's content hash: what a run records as `models`. */
function realFingerprint(files: WorldFiles = worldFiles()): Record<string, string> {
  requireWorldFiles('real', files, 'world real');
  const h = createHash('sha256');
  for (const f of imageFiles(files.images)) h.update(f.slice(files.images.length)).update(readFileSync(f));
  return {
    ...sdClipFingerprint(files.sd, files.clip),
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

function loadRealWorld(files: WorldFiles = worldFiles()): World {
  requireWorldFiles('real', files, 'world real');
  const sd = loadStableDiffusion(files.sd);
  const clip = loadClip(files.clip);
  const inception = loadInception(files.inception);
  const arcface = files.arcface ? loadIrSe50(files.arcface) : null;
  if (!clip.config.vision)
    throw new UserError(
      `${files.clip}: a CLIPModel (both towers) is needed for CLIP similarity, not a ${clip.config.kind}`,
    );
  const imageSize = sdImageSize(sd);
  const images = imageFiles(files.images);
  const fingerprint = realFingerprint(files);
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
    diffusion: diffusionOf(sd),
    clip: clipOf(clip, ClipTokenizer.fromFolder(files.clip), `clip:${fingerprint.clip.slice(0, 12)}`),
    // With the optional ArcFace: identity similarity as StyleCLIP and e4e measure it (their ID-loss crop).
    identity: arcface ? arcfaceOf(arcface, `arcface-ir-se50:${fingerprint.arcface.slice(0, 12)}`) : undefined,
    fid: inceptionFidOf(inception, imageSize, `inception:${fingerprint.inception.slice(0, 12)}`),
    dispose() {
      sd.dispose();
      clip.params.dispose();
      inception.dispose();
      arcface?.dispose();
    },
  };
}

export const realWorld: WorldDef = {
  name: 'real',
  describe: 'Stable Diffusion v1.x, CLIP and Inception from their published files, on a folder of test images',
  roles: REAL_ROLES,
  fingerprint: realFingerprint,
  load: loadRealWorld,
};
