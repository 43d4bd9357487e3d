/**
 * Rendered images of a split range, as uint8 NHWC, rendered on the worker pool and cached under
 * .cache/toyfaces/ (gitignored; the key holds the renderer version, so a renderer change
 * re-renders). Labels are attribute indices, recomputed from the seeds (cheap).
 *
 * The workers' side is the 'renderFaces' task, registered here: a pool passed to loadImageSet
 * must list this module (TOYFACES_TASKS) in its taskModules.
 */
// Pool workers load this module (TOYFACES_TASKS); the model losses ride along for 'gradStep'.
import './train/register.js';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkerPool } from '../../src/backend/pool.js';
import { registerWorkerTask } from '../../src/backend/task_registry.js';
import { PROJECT_ROOT } from '../../src/util/env.js';
import { writeFileAtomic } from '../../src/util/atomic.js';
import { ATTRIBUTE_NAMES, sampleFace, valuesOf } from './attributes.js';
import { RENDER_VERSION, render } from './render.js';
import { SPLITS, seedOf, type Split } from './world.js';

export interface ImageSet {
  images: Uint8Array; // [n, size, size, 3]
  labels: Float32Array; // [n, attributes] class indices
  n: number;
  size: number;
}

export const CACHE_DIR = join(process.env.SDD_CACHE ?? join(PROJECT_ROOT, '.cache'), 'toyfaces');

function renderSeedsU8(seeds: number[], size: number): Uint8Array {
  const per = size * size * 3;
  const out = new Uint8Array(seeds.length * per);
  seeds.forEach((s, i) => {
    const img = render(sampleFace(s), size);
    for (let j = 0; j < per; j++) out[i * per + j] = Math.round(img[j] * 255);
  });
  return out;
}

declare module '../../src/backend/task_registry.js' {
  interface WorkerTasks {
    /** toyfaces images for these seeds, uint8 NHWC. */
    renderFaces: { input: { seeds: number[]; size: number }; output: Uint8Array };
  }
}

registerWorkerTask('renderFaces', ({ seeds, size }) => renderSeedsU8(seeds, size));

/** This module's URL: the task module a pool needs to run 'renderFaces' (WorkerPool's taskModules). */
export const TOYFACES_TASKS: string = import.meta.url;

function labelsOf(seeds: number[]): Float32Array {
  const out = new Float32Array(seeds.length * ATTRIBUTE_NAMES.length);
  seeds.forEach((s, i) => {
    const f = sampleFace(s);
    ATTRIBUTE_NAMES.forEach((name, k) => (out[i * ATTRIBUTE_NAMES.length + k] = valuesOf(name).indexOf(f.attrs[name])));
  });
  return out;
}

export async function loadImageSet(split: Split, n: number, size: number, pool?: WorkerPool): Promise<ImageSet> {
  if (n > SPLITS[split].count) throw new RangeError(`${split} has ${SPLITS[split].count} images, asked for ${n}`);
  const seeds = Array.from({ length: n }, (_, i) => seedOf(split, i));
  const file = join(CACHE_DIR, `${split}-${n}-${size}-r${RENDER_VERSION}.u8`);
  let images: Uint8Array;
  if (existsSync(file)) images = new Uint8Array(readFileSync(file));
  else {
    const chunk = 256;
    const parts: Array<Promise<Uint8Array>> = [];
    for (let i = 0; i < n; i += chunk) {
      const s = seeds.slice(i, i + chunk);
      parts.push(pool ? pool.run('renderFaces', { seeds: s, size }) : Promise.resolve(renderSeedsU8(s, size)));
    }
    const done = await Promise.all(parts);
    images = new Uint8Array(n * size * size * 3);
    let at = 0;
    for (const d of done) {
      images.set(d, at);
      at += d.length;
    }
    mkdirSync(CACHE_DIR, { recursive: true });
    writeFileAtomic(file, images);
  }
  return { images, labels: labelsOf(seeds), n, size };
}

/** Images i..j as float NHWC in [0, 1]. */
/** Indices 0..n-1 in consecutive batches of `size` (the last one shorter): evaluation loops. */
export function batchIndices(n: number, size: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < n; i += size) out.push(Array.from({ length: Math.min(size, n - i) }, (_, k) => i + k));
  return out;
}

export function floatBatch(set: ImageSet, idx: number[]): Float32Array {
  const per = set.size * set.size * 3;
  const out = new Float32Array(idx.length * per);
  idx.forEach((k, i) => {
    for (let j = 0; j < per; j++) out[i * per + j] = set.images[k * per + j] / 255;
  });
  return out;
}

export function labelBatch(set: ImageSet, idx: number[]): Float32Array {
  const a = ATTRIBUTE_NAMES.length;
  const out = new Float32Array(idx.length * a);
  idx.forEach((k, i) => out.set(set.labels.subarray(k * a, (k + 1) * a), i * a));
  return out;
}
