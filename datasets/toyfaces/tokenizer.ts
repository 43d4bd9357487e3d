/**
 * Word-level tokenizer for toyfaces captions (the CLIP BPE tokenizer's role). The vocabulary is
 * every word of the caption phrases, fixed by the phrase table, so it never drifts silently: a
 * phrase change changes the vocabulary, and the text models must be retrained.
 * Ids: 0 = padding, 1 = unknown word, then the vocabulary in sorted order.
 */
import { PHRASES } from './captions.js';

export const MAX_TOKENS = 16;
export const PAD = 0;
export const UNK = 1;

const words = (text: string) =>
  text
    .toLowerCase()
    .split(/[^a-z]+/)
    .filter(Boolean);

export const VOCAB: string[] = [
  ...new Set([
    ...words('a face with'),
    ...Object.values(PHRASES).flatMap((values) => Object.values(values as Record<string, string>).flatMap(words)),
  ]),
].sort();

export const VOCAB_SIZE = VOCAB.length + 2;

const ID = new Map(VOCAB.map((w, i) => [w, i + 2]));

/** Token ids, padded to MAX_TOKENS; longer texts are truncated (as CLIP truncates at 77). */
export function tokenize(text: string): Int32Array {
  const out = new Int32Array(MAX_TOKENS);
  words(text)
    .slice(0, MAX_TOKENS)
    .forEach((w, i) => (out[i] = ID.get(w) ?? UNK));
  return out;
}

/** Several texts as one [n, MAX_TOKENS] float array (the trainer's y layout). */
export function tokenizeBatch(texts: string[]): Float32Array {
  const out = new Float32Array(texts.length * MAX_TOKENS);
  texts.forEach((t, i) => out.set(tokenize(t), i * MAX_TOKENS));
  return out;
}
