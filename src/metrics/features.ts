/**
 * Named feature extractors for FID/KID, and a feature cache keyed by (image set, extractor,
 * weights hash, resize mode). Every result records which extractor, weights and resize it used.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { UserError } from '../errors.js';
import { PROJECT_ROOT } from '../util/env.js';
import { writeFileAtomic } from '../util/atomic.js';
import { didYouMean } from '../util/suggest.js';

export interface Extractor {
  id: string;
  dims: number;
  inputSize: number;
  weightsSha256: string;
  /** NHWC float images in [0, 1] at inputSize → [n, dims] features. */
  extract(images: Float32Array, n: number): Promise<Float32Array>;
}

export interface ExtractorOptions {
  /** A weights file in place of the extractor's default (required where it has none). */
  weights?: string;
}

/** A named extractor and how to load it; worlds register theirs (metrics never imports a world). */
export interface ExtractorDef {
  describe: string;
  load(opts: ExtractorOptions): Extractor | Promise<Extractor>;
}

const EXTRACTORS: Record<string, ExtractorDef> = {};

export function registerExtractor(id: string, def: ExtractorDef): void {
  EXTRACTORS[id] = def;
}

/** The registered extractor ids (the world registry registers every world's). */
export function extractorNames(): string[] {
  return Object.keys(EXTRACTORS);
}

export async function loadExtractor(id: string, opts: ExtractorOptions = {}): Promise<Extractor> {
  const e = EXTRACTORS[id];
  if (!e)
    throw new UserError(
      `--features: unknown extractor '${id}'${didYouMean(id, extractorNames())} (have: ${extractorNames().join(', ')})`,
    );
  return e.load(opts);
}

export interface ImageFolder {
  files: string[];
  /** Hash of names and bytes: the cache key of the set. */
  sha256: string;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

function listImages(dir: string): ImageFolder {
  if (!existsSync(dir)) throw new UserError(`${dir}: no such folder`);
  const files = readdirSync(dir)
    .filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()))
    .sort();
  if (files.length === 0) throw new UserError(`${dir}: no PNG or JPEG images`);
  const h = createHash('sha256');
  for (const f of files) h.update(f).update(readFileSync(join(dir, f)));
  return { files: files.map((f) => join(dir, f)), sha256: h.digest('hex') };
}

/** Decodes to float RGB in [0, 1]. */
export function readImage(path: string): { data: Float32Array; width: number; height: number } {
  const buf = readFileSync(path);
  let rgba: Uint8Array;
  let width: number;
  let height: number;
  try {
    if (extname(path).toLowerCase() === '.png') {
      const p = PNG.sync.read(buf);
      [rgba, width, height] = [p.data, p.width, p.height];
    } else {
      const j = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true });
      [rgba, width, height] = [j.data, j.width, j.height];
    }
  } catch (e) {
    throw new UserError(`${path}: cannot decode (${(e as Error).message})`);
  }
  const data = new Float32Array(width * height * 3);
  for (let i = 0; i < width * height; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = rgba[i * 4 + c] / 255;
  return { data, width, height };
}

export type ResizeMode = 'none' | 'bilinear';

/** Images decoded, resized and extracted at a time: bounds memory for large folders at 299². */
const FOLDER_BATCH = 64;

/**
 * One image at the extractor's size: bilinear resize as PyTorch's F.interpolate(mode='bilinear',
 * align_corners=False) without antialias (pytorch-fid's mode): half-pixel centres in tfjs terms.
 */
async function atSize(im: { data: Float32Array; width: number; height: number }, s: number): Promise<Float32Array> {
  if (im.width === s && im.height === s) return im.data;
  const r = tf.tidy(() => tf.image.resizeBilinear(tf.tensor3d(im.data, [im.height, im.width, 3]), [s, s], false, true));
  try {
    return (await r.data()) as Float32Array;
  } finally {
    r.dispose();
  }
}

/**
 * Features of every image in the folder, in file-name order; images not at the extractor's size
 * are resized (see atSize). Read, resized and extracted FOLDER_BATCH images at a time. Cached.
 */
export async function folderFeatures(
  dir: string,
  ex: Extractor,
): Promise<{ features: Float32Array; n: number; resize: ResizeMode }> {
  const folder = listImages(dir);
  const n = folder.files.length;
  const s = ex.inputSize;
  const features = new Float32Array(n * ex.dims);
  let resized = false;
  const keyOf = (resize: ResizeMode) =>
    createHash('sha256').update(`${folder.sha256}|${ex.id}|${ex.weightsSha256}|${resize}`).digest('hex').slice(0, 24);
  const cacheDir = join(process.env.SDD_CACHE ?? join(PROJECT_ROOT, '.cache'), 'features');
  for (const resize of ['none', 'bilinear'] as const) {
    const cached = join(cacheDir, `${keyOf(resize)}.f32`);
    if (existsSync(cached)) return { features: new Float32Array(readFileSync(cached).buffer.slice(0)), n, resize };
  }
  for (let i = 0; i < n; i += FOLDER_BATCH) {
    const files = folder.files.slice(i, i + FOLDER_BATCH);
    const batch = new Float32Array(files.length * s * s * 3);
    for (const [j, f] of files.entries()) {
      const im = readImage(f);
      resized ||= im.width !== s || im.height !== s;
      batch.set(await atSize(im, s), j * s * s * 3);
    }
    features.set(await ex.extract(batch, files.length), i * ex.dims);
  }
  const resize: ResizeMode = resized ? 'bilinear' : 'none';
  mkdirSync(cacheDir, { recursive: true });
  writeFileAtomic(join(cacheDir, `${keyOf(resize)}.f32`), new Uint8Array(features.buffer));
  return { features, n, resize };
}
