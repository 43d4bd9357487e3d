/**
 * The metrics of an edit run, the same for every method: fidelity (FID of edited vs original
 * images on the world's feature net), editability (directional CLIP and plain CLIP score with the
 * world's image–text model), and, where the world has ground truth, attribute hit / preservation
 * and identity similarity. Images are host arrays NHWC in [0, 1].
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AttributeJudge, EditPromptSpec, IdentityModel, World } from '../world/types.js';
import { fidFromFeatures } from '../metrics/fid.js';
import { fidBootstrap } from '../metrics/fid_items.js';
import { bootstrap } from '../metrics/bootstrap.js';
import { kernelInceptionDistance, kernelMatrices, kidSubsetSize, mmd2Rows } from '../metrics/kid.js';
import { clipScore, cosine, directionalSimilarity, textDirection } from '../metrics/clip.js';
import { editAccuracy, identitySimilarity } from '../metrics/attributes.js';
import type { ResultValue } from '../util/result.js';

/** Batches of 100 images as device tensors, `f` applied to each. */
function* batchesOf(world: World, images: Float32Array): Generator<tf.Tensor4D> {
  const s = world.imageSize;
  const per = s * s * 3;
  const n = images.length / per;
  for (let i = 0; i < n; i += 100) {
    const k = Math.min(100, n - i);
    yield tf.tensor4d(images.subarray(i * per, (i + k) * per), [k, s, s, 3]);
  }
}

/** Row embeddings of every image: batches stay on the device, one read at the end. */
async function rowsOf(world: World, images: Float32Array, f: (x: tf.Tensor4D) => tf.Tensor2D): Promise<Float32Array[]> {
  const parts: tf.Tensor2D[] = [];
  for (const x of batchesOf(world, images)) {
    parts.push(tf.tidy(() => f(x)));
    x.dispose();
  }
  const all = parts.length === 1 ? parts[0] : (tf.concat(parts) as tf.Tensor2D);
  const [n, d] = all.shape;
  const v = (await all.data()) as Float32Array;
  tf.dispose([...parts, all]);
  return Array.from({ length: n }, (_, r) => v.slice(r * d, (r + 1) * d));
}

async function classesOf(world: World, judge: AttributeJudge, images: Float32Array): Promise<Int32Array> {
  const out: number[] = [];
  for (const x of batchesOf(world, images)) {
    out.push(...(await judge.predict(x)));
    x.dispose();
  }
  return Int32Array.from(out);
}

const flat = (rows: Float32Array[]) => {
  const out = new Float32Array(rows.length * rows[0].length);
  rows.forEach((r, i) => out.set(r, i * r.length));
  return out;
};

export interface EditMetrics {
  fid: number;
  kid: number | null;
  kid_std: number | null;
  clip_directional: number;
  clip_score: number;
  zero_edits: number;
  /** null where the world has no attribute heads (judge) or identity model. */
  hit_rate: number | null;
  preservation_rate: number | null;
  hit_and_preserved: number | null;
  identity: number | null;
  n: number;
  /** 95% bootstrap intervals [lo, hi] per metric (seeded). */
  ci: Record<string, ResultValue>;
}

/** Per-item values (for paired comparisons, `sdd regress`) and the FID features of both sides. */
export interface EditItems {
  clip_directional: number[];
  /** 100·cos(image, target text) per item; the run's clip_score is max(0, mean). */
  clip_score: number[];
  hit: number[];
  preserved: number[];
  /** 1 when the edit hit and kept every other attribute. */
  hit_and_preserved: number[];
  identity: number[];
  features: { original: Float32Array; edited: Float32Array; dims: number };
}

/** Hit / preservation of the prompt's attribute by the world's heads, original vs edited. */
async function accuracyOf(
  world: World,
  judge: AttributeJudge,
  prompt: EditPromptSpec,
  original: Float32Array,
  edited: Float32Array,
) {
  const [po, pe] = [await classesOf(world, judge, original), await classesOf(world, judge, edited)];
  return editAccuracy(
    { names: judge.names, classes: po },
    { names: judge.names, classes: pe },
    prompt.attribute,
    judge.valuesOf(prompt.attribute).indexOf(prompt.target),
  );
}

async function identityOf(world: World, identity: IdentityModel, original: Float32Array, edited: Float32Array) {
  const ido = await rowsOf(world, original, (x) => identity.embed(x));
  const ide = await rowsOf(world, edited, (x) => identity.embed(x));
  return identitySimilarity(flat(ide), flat(ido), ido[0].length);
}

/** FID and KID of edited vs original features, with their paired item-bootstrap intervals. */
function fidKid(xe: Float64Array | Float32Array, xo: Float64Array | Float32Array, n: number, d: number) {
  const fid = fidFromFeatures(xe, n, xo, n, d);
  // KID over 100 seeded subsets of min(1000, ⌊n/2⌋) (kid.ts: subsets of the full set would all be
  // the same set); its interval is the item bootstrap below, like every other metric's.
  const kid =
    n >= 4
      ? kernelInceptionDistance(xe, n, xo, n, d, { subsetSize: kidSubsetSize(n, n), subsets: 100, seed: 0 })
      : null;
  // 100 resamples for FID (each recomputes FID from the cached features).
  const fidCi = n >= 2 ? fidBootstrap(xe, n, xo, n, d, { resamples: 100, seed: 0, paired: true }) : null;
  // KID's item bootstrap: the unbiased MMD² of the resampled (edited, original) pairs, from kernels made once.
  const kernels = n >= 2 ? kernelMatrices(xe, xo, n, d) : null;
  const kidCi = kernels ? bootstrap(n, (idx) => mmd2Rows(kernels, idx), { resamples: 1000, seed: 0 }) : null;
  return { fid, kid, fidCi, kidCi };
}

/** CLIP image embeddings of both sides and the prompt's target and source text embeddings. */
async function clipOf(world: World, prompt: EditPromptSpec, original: Float32Array, edited: Float32Array) {
  const io = await rowsOf(world, original, (x) => world.clip.imageEmbed(x));
  const ie = await rowsOf(world, edited, (x) => world.clip.imageEmbed(x));
  const texts = tf.tidy(() => world.clip.textEmbed([prompt.text, prompt.sourceText]));
  const tv = (await texts.array()) as number[][];
  texts.dispose();
  return {
    ie,
    dir: directionalSimilarity(ie, io, textDirection([tv[0]], [tv[1]])),
    score: clipScore(
      ie,
      ie.map(() => tv[0]),
    ),
    target: tv[0],
  };
}

/** Seeded 95% percentile bootstrap CI of an item mean (1000 resamples). */
function meanCi(v: number[]): [number, number] {
  const r = bootstrap(v.length, (idx) => idx.reduce((s, k) => s + v[k], 0) / idx.length, { resamples: 1000, seed: 0 });
  return [r.lo, r.hi];
}

export async function evaluateEdits(
  world: World,
  prompt: EditPromptSpec,
  original: Float32Array,
  edited: Float32Array,
): Promise<{ metrics: EditMetrics; info: Record<string, ResultValue>; items: EditItems }> {
  const fo = await rowsOf(world, original, (x) => world.fid.features(x));
  const fe = await rowsOf(world, edited, (x) => world.fid.features(x));
  const n = fo.length;
  const d = fo[0].length;
  // Both sides' features as one array each, made once: FID, KID, their bootstraps and the stored items share them.
  const [xe, xo] = [flat(fe), flat(fo)];
  const { fid, kid, fidCi, kidCi } = fidKid(xe, xo, n, d);
  const { ie, dir, score, target } = await clipOf(world, prompt, original, edited);
  const acc = world.judge ? await accuracyOf(world, world.judge, prompt, original, edited) : null;
  const id = world.identity ? await identityOf(world, world.identity, original, edited) : null;
  const ci: Record<string, ResultValue> = {
    fid: fidCi ? [fidCi.lo, fidCi.hi] : null,
    kid: kidCi ? [kidCi.lo, kidCi.hi] : null,
    clip_directional: meanCi(dir.per_item),
    hit_rate: acc ? meanCi(acc.per_item.map((x) => (x.hit ? 1 : 0))) : null,
    preservation_rate: acc ? meanCi(acc.per_item.map((x) => x.preserved)) : null,
    identity: id ? meanCi(id.per_item) : null,
    level: 0.95,
  };
  const items: EditItems = {
    clip_directional: dir.per_item,
    clip_score: ie.map((e) => 100 * cosine(e, target)),
    hit: acc?.per_item.map((x) => (x.hit ? 1 : 0)) ?? [],
    preserved: acc?.per_item.map((x) => x.preserved) ?? [],
    hit_and_preserved: acc?.per_item.map((x) => (x.hit && x.all_preserved ? 1 : 0)) ?? [],
    identity: id?.per_item ?? [],
    features: { original: xo, edited: xe, dims: d },
  };
  const metrics: EditMetrics = {
    fid,
    kid: kid?.kid_mean ?? null,
    kid_std: kid?.kid_std ?? null,
    clip_directional: dir.clip_directional,
    clip_score: score.clip_score,
    zero_edits: dir.zero_edits,
    hit_rate: acc?.hit_rate ?? null,
    preservation_rate: acc?.preservation_rate ?? null,
    hit_and_preserved: acc?.hit_and_preserved ?? null,
    identity: id?.identity ?? null,
    n,
    ci,
  };
  return { items, metrics, info: infoOf(world, prompt, kid, n, d) };
}

/** What the numbers were computed with, recorded beside them. */
function infoOf(
  world: World,
  prompt: EditPromptSpec,
  kid: { subset_size: number; subsets: number } | null,
  n: number,
  d: number,
) {
  return {
    fid_features: world.fid.id,
    fid_dims: d,
    fid_n: n,
    fid_resize: world.fid.resize ?? 'none (images at the extractor native size)',
    kid_subset_size: kid?.subset_size ?? null,
    kid_subsets: kid?.subsets ?? null,
    ci_method: 'seeded (0) 95% percentile bootstrap over items: 1000 resamples (item means, KID), 100 (FID)',
    clip_model: world.clip.id,
    clip_preprocess: world.clip.preprocess ?? null,
    clip_prompts: { target: prompt.text, source: prompt.sourceText },
    identity_model: world.identity?.id ?? null,
    judge: world.judge ? 'world attribute heads (predictions vs predictions for preservation)' : null,
  };
}
