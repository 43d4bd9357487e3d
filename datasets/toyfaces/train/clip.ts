/** Training and zero-shot evaluation of the mini-CLIP (datasets/toyfaces/models/clip.ts). */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../../src/nn/params.js';
import {
  EDITABLE_NAMES,
  ATTRIBUTE_NAMES,
  isVisible,
  valuesOf,
  type Attributes,
  type EditableName,
} from '../attributes.js';
import { caption, partialCaption, phrase } from '../captions.js';
import { batchIndices, floatBatch, type ImageSet, loadImageSet } from '../cache.js';
import { CLIP_DEFAULT, clipImageEmbed, clipTextEmbed, type ClipConfig } from '../models/clip.js';
import { MAX_TOKENS, tokenizeBatch } from '../tokenizer.js';
import { readBatches, type ZooTrainSpec } from './common.js';

/** The attributes of image k of a set, from its labels. */
export function attributesOf(set: ImageSet, k: number): Attributes {
  const a = ATTRIBUTE_NAMES.length;
  return Object.fromEntries(
    ATTRIBUTE_NAMES.map((name, i) => [name, valuesOf(name)[set.labels[k * a + i]]]),
  ) as Attributes;
}

/** Share of a set's images where `name` is visible whose predicted value index is right, and how many. */
export function visibleAccuracy(
  set: ImageSet,
  name: EditableName,
  predicted: ArrayLike<number>,
): { accuracy: number; counted: number } {
  const values = valuesOf(name);
  let ok = 0;
  let n = 0;
  for (let k = 0; k < set.n; k++) {
    const a = attributesOf(set, k);
    if (!isVisible(a, name)) continue;
    n++;
    if (values[predicted[k]] === a[name]) ok++;
  }
  return { accuracy: ok / n, counted: n };
}

/** Column k of a row-major [n, width] array. */
export function column(values: Int32Array, width: number, k: number): Int32Array {
  const out = new Int32Array(values.length / width);
  for (let i = 0; i < out.length; i++) out[i] = values[i * width + k];
  return out;
}

/** The zero-shot prompt of an attribute value, as the tables' edit prompts phrase it. */
export const zeroShotPrompt = (name: EditableName, value: string) => `a face with ${phrase(name, value as never)}`;

function embedTexts(params: Params, cfg: ClipConfig, texts: string[]): tf.Tensor2D {
  return tf.tidy(() => clipTextEmbed(params, tf.tensor2d(tokenizeBatch(texts), [texts.length, MAX_TOKENS]), cfg));
}

function embedImages(params: Params, cfg: ClipConfig, set: ImageSet): tf.Tensor2D {
  const parts: tf.Tensor2D[] = [];
  for (const idx of batchIndices(set.n, 200)) {
    parts.push(
      tf.tidy(() =>
        clipImageEmbed(params, tf.tensor4d(floatBatch(set, idx), [idx.length, set.size, set.size, 3]), cfg),
      ),
    );
  }
  const all = tf.concat(parts);
  tf.dispose(parts);
  return all;
}

/** Zero-shot accuracy per editable attribute: the value whose prompt scores highest, where visible. */
async function evalClip(params: Params, cfg: ClipConfig, set: ImageSet): Promise<Record<string, unknown>> {
  const img = embedImages(params, cfg, set);
  // The best-scoring value of every editable attribute, [n, E] on the device; read once.
  const pred = tf.tidy(() =>
    tf.stack(
      EDITABLE_NAMES.map((name) => {
        const txt = embedTexts(
          params,
          cfg,
          valuesOf(name).map((v) => zeroShotPrompt(name, v)),
        );
        return tf.argMax(tf.matMul(img, txt, false, true), 1);
      }),
      1,
    ),
  );
  img.dispose();
  const all = await readBatches<Int32Array>([pred]);
  const accuracy: Record<string, number> = {};
  const counted: Record<string, number> = {};
  EDITABLE_NAMES.forEach((name, k) => {
    const r = visibleAccuracy(set, name, column(all, EDITABLE_NAMES.length, k));
    accuracy[name] = r.accuracy;
    counted[name] = r.counted;
  });
  return {
    eval: { split: 'test', n: set.n, prompt: 'a face with <phrase>', visible_only: true },
    zero_shot_accuracy: accuracy,
    counted,
  };
}

export const CLIP_SPEC: ZooTrainSpec<'clip'> = {
  name: 'clip',
  model: 'clip',
  config: CLIP_DEFAULT,
  role: 'image–text model (the CLIP role): CLIP metrics, StyleCLIP guidance, and the diffusion text encoder',
  needs: [],
  version: 1,
  settings: { steps: 2500, batch: 64, lr: 2e-3, seed: 0, trainN: 24_000, evalN: 2_000, size: 32, checkpointEvery: 200 },
  targets(set, idx, rng) {
    const texts = idx.map((k) => {
      const a = attributesOf(set, k);
      return rng.next() < CLIP_DEFAULT.fullCaption ? caption(a) : partialCaption(a, rng);
    });
    return { y: tokenizeBatch(texts), shape: [MAX_TOKENS] };
  },
  async evaluate(params, pool, o) {
    return await evalClip(params, CLIP_DEFAULT, await loadImageSet('test', o.evalN, o.size, pool));
  },
};
