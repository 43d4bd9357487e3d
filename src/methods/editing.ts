/**
 * What every editing method shares: finding the prompt, inverting images to W+, editing the m
 * evaluation images in batches with τ_infer measured (warm-up excluded, results read back), the
 * metrics, and the before/after grid artifact.
 */
import * as tf from '@tensorflow/tfjs-core';
import { flushDevicePool } from '../backend/index.js';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { grid, writePng } from '../util/image_io.js';
import { worldPart, type EditPromptSpec, type World } from '../world/types.js';
import { evaluateEdits } from '../eval/edits.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { f32, writeSafetensors } from '../util/safetensors.js';
import type { MethodContext, ResultValue } from './types.js';
import { calibration } from '../sdd/timing.js';
import { editLatents } from '../sdd/distill.js';
import type { MapperSettings } from '../sdd/mapper.js';
import type { Params } from '../nn/params.js';
import type { TimingRecord } from '../util/calibration.js';

export function promptOf(world: World, id: string): EditPromptSpec {
  const p = world.prompts.find((x) => x.id === id);
  if (!p)
    throw new UserError(
      `method.params.prompt: unknown prompt '${id}' for world ${world.name} (have: ${world.prompts.map((x) => x.id).join(', ')})`,
    );
  return p;
}

/** W+ codes of host images (the e4e step), in chunks. */
export function invert(world: World, images: Float32Array): tf.Tensor3D {
  const s = world.imageSize;
  const per = s * s * 3;
  const n = images.length / per;
  const style = worldPart(world, 'style', 'inverting images to W+');
  const encode = style.encode;
  if (!encode) throw new UserError(`world '${world.name}' has no W+ encoder: its images come from W+ codes`);
  const parts: tf.Tensor3D[] = [];
  for (let i = 0; i < n; i += 100) {
    const k = Math.min(100, n - i);
    parts.push(tf.tidy(() => encode(tf.tensor4d(images.subarray(i * per, (i + k) * per), [k, s, s, 3]))));
  }
  const all = tf.concat(parts) as tf.Tensor3D;
  tf.dispose(parts);
  return all;
}

/** The n training codes a latent mapper trains on: the world's own codes, or its training images inverted. */
export function trainCodes(world: World, n: number): tf.Tensor3D {
  return world.codes ? world.codes.train(n) : invert(world, world.trainImages(n));
}

/** G(w) in batches of `batch` (a 1024² generator does not take m = 100 at once), read back. */
async function generated(world: World, w: tf.Tensor3D, batch = 4): Promise<Float32Array> {
  const style = worldPart(world, 'style', 'generating the source images');
  const per = world.imageSize * world.imageSize * 3;
  const n = w.shape[0];
  const out = new Float32Array(n * per);
  for (let i = 0; i < n; i += batch) {
    const k = Math.min(batch, n - i);
    const x = tf.tidy(() => tf.clipByValue(style.generate(tf.slice(w, [i, 0, 0], [k, -1, -1]) as tf.Tensor3D), 0, 1));
    out.set((await x.data()) as Float32Array, i * per);
    x.dispose();
  }
  return out;
}

/**
 * Which images every method edits (and is measured against). `reconstructed` (default): the
 * generator's reconstructions G(E(x)) of the test images, so the inversion error of the encoder
 * (a property of the GAN, not of any editing method) is outside every metric and a zero edit
 * scores FID 0 and full preservation for every method; `real`: the rendered test images x.
 */
export const sourcesParam = z
  .enum(['reconstructed', 'real'])
  .default('reconstructed')
  .describe('images every method edits: reconstructed = G(E(x)) (the GAN domain), real = x');
export type SourceMode = z.infer<typeof sourcesParam>;

/** The m evaluation images for a prompt and their W+ codes (the caller disposes `w`). */
export async function evaluationSources(
  world: World,
  promptId: string,
  m: number,
  mode: SourceMode,
): Promise<{ images: Float32Array; w: tf.Tensor3D }> {
  // A world of codes (paper, paper-random) has no photographs: its sources are G(w) in either mode.
  if (world.codes) {
    const w = world.codes.sources(promptId, m);
    return { images: await generated(world, w), w };
  }
  const real = world.sources(promptId, m);
  if (mode === 'reconstructed')
    worldPart(
      world,
      'style',
      'method.params.sources: reconstructed (set sources: real to edit the test images themselves)',
    );
  const w = invert(world, real);
  if (mode === 'real') return { images: real, w };
  const images = tf.tidy(() =>
    tf.clipByValue(
      worldPart(
        world,
        'style',
        'method.params.sources: reconstructed (set sources: real to edit the test images themselves)',
      ).generate(w),
      0,
      1,
    ),
  );
  const data = (await images.data()) as Float32Array;
  images.dispose();
  return { images: Float32Array.from(data), w };
}

/**
 * Applies `edit` to every image (batches of `batch`), returning the edited images and τ_infer per
 * image: the median over the first calibration batches, timed under the device lock
 * (../sdd/timing.ts); `timing` says how. A first, untimed call on one image warms the backend up.
 */
export async function editTimed(
  world: World,
  images: Float32Array,
  batch: number,
  edit: (x: tf.Tensor4D, offset: number) => tf.Tensor4D,
): Promise<{ edited: Float32Array; tauInfer: number; timing: TimingRecord }> {
  const s = world.imageSize;
  const per = s * s * 3;
  const n = images.length / per;
  const warm = tf.tidy(() => edit(tf.tensor4d(images.subarray(0, per), [1, s, s, 3]), 0));
  await warm.data();
  warm.dispose();
  const edited = new Float32Array(images.length);
  const cal = calibration('infer', 'image', n, Math.ceil(n / batch));
  try {
    for (let i = 0; i < n; i += batch) {
      const k = Math.min(batch, n - i);
      await cal.begin();
      const out = tf.tidy(() =>
        tf.clipByValue(edit(tf.tensor4d(images.subarray(i * per, (i + k) * per), [k, s, s, 3]), i), 0, 1),
      );
      edited.set(await out.data(), i * per); // read back: the batch's device work is done
      await cal.end(undefined, k);
      out.dispose();
      flushDevicePool(); // a batch boundary: pooled buffers beyond the budget go (webgpu; a no-op elsewhere)
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    cal.release();
  }
  const timing = cal.record();
  return { edited, tauInfer: timing.median_s, timing };
}

/**
 * A latent mapper's edits of the m evaluation images, G(w + step·M(w)) from their W+ codes (SDD and
 * StyleCLIP edit alike): one generator forward per image, batches of all m. The inversion is the
 * input pipeline, outside τ_infer. The caller keeps (and disposes) the mapper.
 */
export async function mapperEdits(
  world: World,
  mapper: Params,
  settings: MapperSettings,
  promptId: string,
  p: { eval_images: number; sources: SourceMode },
): Promise<{ originals: Float32Array; edited: Float32Array; tauInfer: number; timing: TimingRecord }> {
  const { images: originals, w } = await evaluationSources(world, promptId, p.eval_images, p.sources);
  const timed = await editTimed(world, originals, p.eval_images, (x, offset) =>
    editLatents(world, mapper, tf.slice(w, [offset, 0, 0], [x.shape[0], -1, -1]) as tf.Tensor3D, settings),
  );
  w.dispose();
  return { originals, ...timed };
}

/** First `cols` originals over their edits, as artifacts/edits.png. */
function saveEditGrid(
  ctx: MethodContext<unknown>,
  world: World,
  originals: Float32Array,
  edited: Float32Array,
  cols = 8,
): void {
  const s = world.imageSize;
  const per = s * s * 3;
  const c = Math.min(cols, originals.length / per);
  const imgs: Float32Array[] = [];
  for (let i = 0; i < c; i++) imgs.push(originals.slice(i * per, (i + 1) * per));
  for (let i = 0; i < c; i++) imgs.push(edited.slice(i * per, (i + 1) * per));
  const g = grid(imgs, s, c);
  writePng(ctx.artifactPath('edits.png'), g.data, g.width, g.height);
}

/** τ_train and τ_infer, and (in-process methods) how each phase was timed: result.json's `timing`. */
interface EditTimes {
  tau_train_s: number;
  tau_infer_s: number;
  timing?: Partial<Record<'train' | 'hqs' | 'infer', TimingRecord>>;
}

/**
 * The common part of every editing method's result, from its finished edits: the before/after
 * grid goes to artifacts/edits.png, per-item values to artifacts/items.json and both sides' FID
 * features to artifacts/features.safetensors (paired comparisons reuse them).
 */
export async function editResult(
  ctx: MethodContext<unknown>,
  world: World,
  prompt: EditPromptSpec,
  originals: Float32Array,
  edited: Float32Array,
  times: EditTimes,
): Promise<Record<string, ResultValue>> {
  saveEditGrid(ctx, world, originals, edited);
  const { metrics, info, items } = await evaluateEdits(world, prompt, originals, edited);
  const { features, ...perItem } = items;
  writeJsonAtomic(ctx.artifactPath('items.json'), {
    prompt: prompt.id,
    items: 'the first m evaluation images of the prompt, in order',
    ...perItem,
  });
  const n = features.original.length / features.dims;
  writeSafetensors(
    ctx.artifactPath('features.safetensors'),
    new Map([
      ['original', f32([n, features.dims], features.original)],
      ['edited', f32([n, features.dims], features.edited)],
    ]),
    { extractor: world.fid.id },
  );
  return {
    prompt: prompt.id,
    prompt_group: prompt.group,
    ...metrics,
    ...times,
    world: world.name,
    models: world.fingerprint,
    metric_info: info,
  };
}
