/**
 * tools/synthetic_weights.py in TypeScript, bit for bit: full-size stand-in weights for parity
 * tests whose reference outputs are committed but whose weights are too large to commit.
 */
import { writeSafetensors, f32, type StTensor } from '../src/util/safetensors.js';

export type Rule = ['uniform', number] | ['around', number, number] | ['const', number[]];

function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(text, 'utf-8')) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/** n values, each float64 in [0, 1), from the tensor's name (murmur3 fmix32 of a Weyl sequence). */
function uniform(name: string, n: number): Float64Array {
  const key = fnv1a32(name);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let x = (Math.imul(i, 0x9e3779b1) + key) >>> 0;
    // ^ yields a signed int32: >>> 0 keeps every step an unsigned 32-bit value, as numpy's uint arithmetic.
    x = (x ^ (x >>> 16)) >>> 0;
    x = Math.imul(x, 0x85ebca6b) >>> 0;
    x = (x ^ (x >>> 13)) >>> 0;
    x = Math.imul(x, 0xc2b2ae35) >>> 0;
    x = (x ^ (x >>> 16)) >>> 0;
    out[i] = x / 2 ** 32;
  }
  return out;
}

export function values(name: string, shape: number[], rule: Rule): Float32Array {
  if (rule[0] === 'const') return Float32Array.from(rule[1]);
  const u = uniform(
    name,
    shape.reduce((a, b) => a * b, 1),
  );
  const out = new Float32Array(u.length);
  const [centre, half] = rule[0] === 'uniform' ? [0, rule[1]] : [rule[1], rule[2]];
  // centre 0 adds nothing: (2u − 1)·a stays bit-equal to numpy's uniform rule.
  for (let i = 0; i < u.length; i++)
    out[i] = rule[0] === 'uniform' ? (2 * u[i] - 1) * half : centre + (2 * u[i] - 1) * half;
  return out;
}

export interface SyntheticSpec {
  tensors: { name: string; shape: number[]; rule: Rule; sha256: string }[];
}

/** Writes the spec's tensors (float32, in the published layout) to a safetensors file. */
export function writeSynthetic(path: string, spec: SyntheticSpec): Map<string, StTensor> {
  const tensors = new Map<string, StTensor>();
  for (const t of spec.tensors) tensors.set(t.name, f32(t.shape, values(t.name, t.shape, t.rule)));
  writeSafetensors(path, tensors);
  return tensors;
}
