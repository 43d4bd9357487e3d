/**
 * safetensors: 8-byte little-endian header length, a JSON header {name: {dtype, shape,
 * data_offsets: [begin, end]}, "__metadata__"?: {string: string}}, then the raw little-endian
 * buffer. Parsing checks every bound before touching data: a corrupt or truncated file fails with
 * a message naming the file, never with an out-of-range read.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic.js';
import { decodeHalf, encodeHalf } from './f16.js';

export type StDtype = 'F32' | 'F16' | 'I32' | 'U8';
const BYTES: Record<StDtype, number> = { F32: 4, F16: 2, I32: 4, U8: 1 };
const MAX_HEADER = 100 * 1024 * 1024;

export interface StTensor {
  dtype: StDtype;
  shape: number[];
  data: Uint8Array;
}

export interface StFile {
  tensors: Map<string, StTensor>;
  metadata: Record<string, string>;
}

export class SafetensorsError extends Error {}

export function parseSafetensors(buf: Uint8Array, file = '<buffer>'): StFile {
  const fail = (m: string): never => {
    throw new SafetensorsError(`${file}: ${m}`);
  };
  if (buf.byteLength < 8) fail('truncated: shorter than the 8-byte header length');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER)) fail(`header length ${n} exceeds ${MAX_HEADER} bytes`);
  const hlen = Number(n);
  if (8 + hlen > buf.byteLength) fail(`truncated: header needs ${hlen} bytes, file has ${buf.byteLength - 8}`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + hlen)));
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header is not a JSON object');
  const dataLen = buf.byteLength - 8 - hlen;
  const tensors = new Map<string, StTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e.dtype !== 'string' || !(e.dtype in BYTES)) fail(`${name}: unsupported dtype ${String(e.dtype)}`);
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`${name}: bad shape`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${name}: bad data_offsets`);
    }
    const [b, en] = off as [number, number];
    const want = (shape as number[]).reduce((a, d) => a * d, 1) * BYTES[e.dtype as StDtype];
    if (b > en || en > dataLen) fail(`${name}: data_offsets [${b}, ${en}] outside the ${dataLen}-byte buffer (truncated?)`);
    if (en - b !== want) fail(`${name}: ${en - b} bytes for shape [${shape}] ${e.dtype} (expected ${want})`);
    tensors.set(name, { dtype: e.dtype as StDtype, shape: shape as number[], data: buf.subarray(8 + hlen + b, 8 + hlen + en) });
  }
  return { tensors, metadata };
}

export function readSafetensors(path: string): StFile {
  return parseSafetensors(readFileSync(path), path);
}

export function serializeSafetensors(tensors: Map<string, StTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const names = [...tensors.keys()].sort();
  for (const name of names) {
    const t = tensors.get(name)!;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // aligned data start, as the reference writer does
  const head = Buffer.from(json, 'utf-8');
  const out = new Uint8Array(8 + head.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.byteLength), true);
  out.set(head, 8);
  let at = 8 + head.byteLength;
  for (const name of names) {
    const d = tensors.get(name)!.data;
    out.set(d, at);
    at += d.byteLength;
  }
  return out;
}

export function writeSafetensors(path: string, tensors: Map<string, StTensor>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}

export function f32(shape: number[], values: Float32Array): StTensor {
  return { dtype: 'F32', shape, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/** fp16 storage for shipped weights (half the size; the models tolerate it, see their cards). */
export function f16(shape: number[], values: Float32Array): StTensor {
  const h = encodeHalf(values);
  return { dtype: 'F16', shape, data: new Uint8Array(h.buffer) };
}

/** Values as float32, decoding F16. */
export function asFloat32(t: StTensor): Float32Array {
  if (t.dtype === 'F16') {
    const copy = new Uint8Array(t.data.byteLength);
    copy.set(t.data);
    return decodeHalf(new Uint16Array(copy.buffer));
  }
  if (t.dtype !== 'F32') throw new SafetensorsError(`expected F32 or F16, got ${t.dtype}`);
  // Copy into a fresh buffer: the view into a file buffer need not be 4-byte aligned, and a Node
  // Buffer's slice() is a view of the shared pool, not a copy.
  const copy = new Uint8Array(t.data.byteLength);
  copy.set(t.data);
  return new Float32Array(copy.buffer);
}
