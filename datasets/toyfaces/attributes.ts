/**
 * The toyfaces attribute space. Editable attributes mirror the paper's edits (hair colour and
 * style, expression, glasses, pose — a spatial edit); identity attributes and the small geometric
 * jitter must survive any edit. Every attribute is drawn from a seeded generator, so an image is
 * fully described by its seed (and an edit by seed + changed attribute).
 */
import { Rng } from '../../src/util/rng.js';

export const EDITABLE = {
  hair_color: ['black', 'brown', 'blonde', 'red', 'white'],
  hair_style: ['short', 'long', 'curly', 'bald'],
  expression: ['neutral', 'happy', 'angry'],
  glasses: ['none', 'glasses'],
  pose: ['frontal', 'side'],
} as const;

export const IDENTITY = {
  skin_tone: ['porcelain', 'light', 'tan', 'brown', 'dark'],
  face_shape: ['narrow', 'oval', 'wide'],
  eye_color: ['brown', 'blue', 'green', 'grey'],
  background: ['sky', 'mint', 'sand', 'lilac', 'slate', 'peach'],
} as const;

export type EditableName = keyof typeof EDITABLE;
export type IdentityName = keyof typeof IDENTITY;
export type AttributeName = EditableName | IdentityName;

export type Attributes = { [K in EditableName]: (typeof EDITABLE)[K][number] } & {
  [K in IdentityName]: (typeof IDENTITY)[K][number];
};

/** Per-image nuisance geometry, part of identity: small shifts and scales, a facing side. */
export interface Jitter {
  dx: number;
  dy: number;
  scale: number;
  /** Which way a side view faces: -1 left, +1 right. */
  facing: -1 | 1;
  /** Hue shift of the shirt, 0..1. */
  shirt: number;
}

export interface Face {
  seed: number;
  attrs: Attributes;
  jitter: Jitter;
}

export const ATTRIBUTE_NAMES = [...Object.keys(EDITABLE), ...Object.keys(IDENTITY)] as AttributeName[];
export const EDITABLE_NAMES = Object.keys(EDITABLE) as EditableName[];

export function valuesOf(name: AttributeName): readonly string[] {
  return (EDITABLE as Record<string, readonly string[]>)[name] ?? (IDENTITY as Record<string, readonly string[]>)[name];
}

/** Uniform over every attribute value, independently: no correlations a model could exploit. */
export function sampleFace(seed: number): Face {
  const rng = new Rng(seed);
  const attrs = {} as Record<string, string>;
  for (const name of ATTRIBUTE_NAMES) attrs[name] = rng.pick(valuesOf(name));
  const jitter: Jitter = {
    dx: rng.uniform(-0.06, 0.06),
    dy: rng.uniform(-0.05, 0.05),
    scale: rng.uniform(0.94, 1.06),
    facing: rng.next() < 0.5 ? -1 : 1,
    shirt: rng.next(),
  };
  return { seed, attrs: attrs as Attributes, jitter };
}

/** The same face with one editable attribute changed: ground truth for any edit. */
export function withAttribute<K extends EditableName>(face: Face, name: K, value: Attributes[K]): Face {
  return { ...face, attrs: { ...face.attrs, [name]: value } };
}

/**
 * Whether an attribute shows in the image at all: a bald head has no hair to colour (only the
 * eyebrows keep a tint). Edit prompts skip faces where their attribute is invisible, and the
 * attribute net's accuracy for it is measured where it is visible.
 */
export function isVisible(attrs: Attributes, name: AttributeName): boolean {
  return !(name === 'hair_color' && attrs.hair_style === 'bald');
}
