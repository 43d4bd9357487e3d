/**
 * Captions from attributes, and the fixed edit prompts of the tables. A caption names the
 * editable attributes in words CLIP-style models can learn; partial captions (a random subset
 * of phrases) train text conditioning that works for short prompts like "red hair".
 */
import { Rng } from '../../src/util/rng.js';
import type { Attributes, EditableName } from './attributes.js';

/** The phrase for an attribute value. */
export const PHRASES: { [K in EditableName]: Record<Attributes[K], string> } = {
  hair_color: { black: 'black hair', brown: 'brown hair', blonde: 'blonde hair', red: 'red hair', white: 'white hair' },
  hair_style: { short: 'short hair', long: 'long hair', curly: 'curly hair', bald: 'a bald head' },
  expression: { neutral: 'neutral expression', happy: 'smiling', angry: 'angry' },
  glasses: { none: 'no glasses', glasses: 'wearing glasses' },
  pose: { frontal: 'frontal view', side: 'side view' },
};

const ORDER: EditableName[] = ['hair_color', 'hair_style', 'expression', 'glasses', 'pose'];

export function phrase<K extends EditableName>(name: K, value: Attributes[K]): string {
  return PHRASES[name][value];
}

/** "a face with red hair, curly hair, smiling, wearing glasses, side view" (bald faces: no colour). */
export function caption(a: Attributes): string {
  const parts = ORDER.filter((k) => !(k === 'hair_color' && a.hair_style === 'bald')).map((k) =>
    phrase(k, a[k] as never),
  );
  return `a face with ${parts.join(', ')}`;
}

/** A random non-empty subset of the phrases, in a random order (text-conditioning training). */
export function partialCaption(a: Attributes, rng: Rng): string {
  const keys = rng.shuffle(ORDER.filter((k) => !(k === 'hair_color' && a.hair_style === 'bald')));
  const n = 1 + rng.int(keys.length);
  return `a face with ${keys
    .slice(0, n)
    .map((k) => phrase(k, a[k] as never))
    .join(', ')}`;
}

/** An edit prompt: what to change, from which value to which; `target` text is what guides. */
export interface EditPrompt {
  id: string;
  attribute: EditableName;
  source: string;
  target: string;
  /** Text for the target and the source (directional CLIP uses both). */
  text: string;
  sourceText: string;
  group: 'colour' | 'style' | 'expression' | 'glasses' | 'pose';
}

function edit(attribute: EditableName, source: string, target: string, group: EditPrompt['group']): EditPrompt {
  const text = `a face with ${(PHRASES[attribute] as Record<string, string>)[target]}`;
  const sourceText = `a face with ${(PHRASES[attribute] as Record<string, string>)[source]}`;
  return { id: `${attribute}:${source}->${target}`, attribute, source, target, text, sourceText, group };
}

/** The fixed prompts of Tables 1–3 (n = 10), each checkable against ground truth. */
export const EDIT_PROMPTS: EditPrompt[] = [
  edit('hair_color', 'black', 'white', 'colour'),
  edit('hair_color', 'brown', 'red', 'colour'),
  edit('hair_color', 'black', 'blonde', 'colour'),
  edit('hair_style', 'short', 'long', 'style'),
  edit('hair_style', 'short', 'curly', 'style'),
  edit('expression', 'neutral', 'happy', 'expression'),
  edit('expression', 'neutral', 'angry', 'expression'),
  edit('glasses', 'none', 'glasses', 'glasses'),
  edit('pose', 'frontal', 'side', 'pose'),
  edit('hair_style', 'short', 'bald', 'style'),
];
