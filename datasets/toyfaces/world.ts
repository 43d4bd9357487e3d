/**
 * The toyfaces world's data: fixed splits by seed range, images rendered on demand (cheap and
 * deterministic, so nothing is stored), a manifest with every attribute of every image, and
 * source images for each edit prompt (test images whose attribute has the prompt's source value).
 */
import { isVisible, sampleFace, withAttribute, type Attributes, type Face } from './attributes.js';
import { render } from './render.js';
import { caption, type EditPrompt } from './captions.js';

export const SPLITS = {
  train: { from: 0, count: 200_000 },
  val: { from: 1_000_000, count: 5_000 },
  test: { from: 2_000_000, count: 10_000 },
} as const;
export type Split = keyof typeof SPLITS;

export interface ManifestRow {
  split: Split;
  index: number;
  seed: number;
  caption: string;
  attrs: Attributes;
}

export function seedOf(split: Split, index: number): number {
  const s = SPLITS[split];
  if (!Number.isInteger(index) || index < 0 || index >= s.count)
    throw new RangeError(`${split}: index ${index} outside 0..${s.count - 1}`);
  return s.from + index;
}

export function face(split: Split, index: number): Face {
  return sampleFace(seedOf(split, index));
}

export function manifest(split: Split, count: number = SPLITS[split].count): ManifestRow[] {
  return Array.from({ length: count }, (_, index) => {
    const f = face(split, index);
    return { split, index, seed: f.seed, caption: caption(f.attrs), attrs: f.attrs };
  });
}

/** NHWC batch in [0, 1] for the given faces. */
export function renderBatch(faces: Face[], size = 32): Float32Array {
  const per = size * size * 3;
  const out = new Float32Array(faces.length * per);
  faces.forEach((f, i) => out.set(render(f, size), i * per));
  return out;
}

/**
 * The first `m` test faces a prompt applies to (attribute = source value, and visible), with their
 * ground-truth edits: the same face rendered with the target value.
 */
export function editSet(prompt: EditPrompt, m: number): Array<{ source: Face; target: Face }> {
  const out: Array<{ source: Face; target: Face }> = [];
  for (let i = 0; i < SPLITS.test.count && out.length < m; i++) {
    const f = face('test', i);
    if (f.attrs[prompt.attribute] !== prompt.source || !isVisible(f.attrs, prompt.attribute)) continue;
    out.push({ source: f, target: withAttribute(f, prompt.attribute, prompt.target as never) });
  }
  if (out.length < m)
    throw new RangeError(
      `prompt ${prompt.id}: only ${out.length} test faces have ${prompt.attribute}=${prompt.source}`,
    );
  return out;
}
