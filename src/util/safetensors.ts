/**
 * safetensors: 8-byte little-endian header length, a JSON header {name: {dtype, shape,
 * data_offsets: [begin, end]}, "__metadata__"?: {string: string}}, then the raw little-endian
 * buffer. Parsing checks every bound before touching data: a corrupt or truncated file fails with
 * a one-line SafetensorsError naming the file, never with an out-of-range read.
 *
 * As the reference reader does, the tensors' byte ranges, taken in offset order, must tile the
 * data buffer exactly: no overlap, no gap, no trailing bytes. The header's key order need not
 * follow the offsets (the reference writer sorts keys by name but lays data out by dtype).
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { decodeHalf, encodeHalf } from './f16.js';

export type StDtype = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8';
export const DTYPE_BYTES: Record<StDtype, number> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1 };
const BYTES = DTYPE_BYTES;
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

/** A bad or unreadable weights file: a user error (one line, exit 2), the message starting with the file. */
export class SafetensorsError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

/** A tensor name as it can be printed on one line: quoted when odd, cut when long. */
export function showName(name: string): string {
  const cut = name.length > 60 ? `${name.slice(0, 57)}...` : name;
  return /^[\x21-\x7e]+$/.test(cut) ? cut : JSON.stringify(cut);
}

/**
 * The top-level keys of a JSON object text, in order, duplicates kept (JSON.parse keeps only the
 * last of a repeated key, which would hide a second, conflicting entry). `text` must be valid JSON.
 */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(text.slice(i, j + 1)) as string);
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = c === '{' && depth === 1;
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectKey = true;
    else if (c === ':' && depth === 1) expectKey = false;
  }
  return keys;
}

export interface Entry {
  name: string;
  dtype: StDtype;
  shape: number[];
  begin: number;
  end: number;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** One header entry, checked for form and for its byte count (shape × dtype size). */
function parseEntry(name: string, entry: unknown, fail: (m: string) => never): Entry {
  const n = showName(name);
  if (!isPlainObject(entry))
    return fail(`${n}: expected {dtype, shape, data_offsets}, got ${JSON.stringify(entry)?.slice(0, 40)}`);
  const { dtype, shape, data_offsets: off } = entry;
  if (typeof dtype !== 'string' || !Object.hasOwn(BYTES, dtype))
    fail(`${n}: unsupported dtype ${JSON.stringify(dtype)?.slice(0, 40)} (have ${Object.keys(BYTES).join(', ')})`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    fail(`${n}: bad shape ${JSON.stringify(shape)?.slice(0, 40)}`);
  if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(`${n}: bad data_offsets ${JSON.stringify(off)?.slice(0, 40)}`);
  }
  const [begin, end] = off as [number, number];
  if (begin > end) fail(`${n}: data_offsets [${begin}, ${end}] end before they begin`);
  const want = (shape as number[]).reduce((a, d) => a * d, 1) * BYTES[dtype as StDtype];
  if (end - begin !== want)
    fail(`${n}: ${end - begin} bytes for shape [${shape as number[]}] ${dtype} (expected ${want})`);
  return { name, dtype: dtype as StDtype, shape: shape as number[], begin, end };
}

/** A checked header: every entry's dtype, shape and byte range inside the data buffer. */
export interface Header {
  entries: Entry[];
  metadata: Record<string, string>;
  /** Byte offset of the data buffer in the file (8 + header length). */
  dataStart: number;
}

/** The header length from the first 8 bytes, bounded before anything is allocated for it. */
export function headerLength(first8: Uint8Array, total: number, fail: (m: string) => never): number {
  if (total < 8) fail(`truncated: ${total} bytes, shorter than the 8-byte header length`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER)) fail(`header length ${n} exceeds ${MAX_HEADER} bytes (not a safetensors file?)`);
  const hlen = Number(n);
  if (8 + hlen > total) fail(`truncated: header needs ${hlen} bytes, file has ${total - 8}`);
  return hlen;
}

/** Checks the header text against a data buffer of `dataLen` bytes: form, byte counts, exact tiling. */
export function checkHeader(
  headerBytes: Uint8Array,
  dataLen: number,
  fail: (m: string) => never,
): Omit<Header, 'dataStart'> {
  let text: string;
  let header: unknown;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message.split('\n')[0].slice(0, 80)})`);
  }
  if (!isPlainObject(header)) return fail('header is not a JSON object');
  const seen = new Set<string>();
  for (const k of topLevelKeys(text)) {
    if (seen.has(k)) fail(`${showName(k)}: key appears twice in the header`);
    seen.add(k);
  }
  const entries: Entry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) fail('__metadata__: expected an object of strings');
      const bad = Object.entries(entry as Record<string, unknown>).find(([, v]) => typeof v !== 'string');
      if (bad) fail(`__metadata__.${showName(bad[0])}: expected a string, got ${JSON.stringify(bad[1])?.slice(0, 40)}`);
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = parseEntry(name, entry, fail);
    if (e.end > dataLen)
      fail(`${showName(name)}: data_offsets [${e.begin}, ${e.end}] outside the ${dataLen}-byte buffer (truncated?)`);
    entries.push(e);
  }
  // In offset order the ranges must tile [0, dataLen): each begins where the previous ended.
  const ordered = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of ordered) {
    if (e.begin < at)
      fail(`${showName(e.name)}: data_offsets [${e.begin}, ${e.end}] overlap the previous tensor's (ending at ${at})`);
    if (e.begin > at) fail(`${showName(e.name)}: data_offsets [${e.begin}, ${e.end}] leave a gap after byte ${at}`);
    at = e.end;
  }
  if (at !== dataLen) fail(`${dataLen - at} trailing bytes after the last tensor (data ends at ${at} of ${dataLen})`);
  return { entries, metadata };
}

export function parseSafetensors(buf: Uint8Array, file = '<buffer>'): StFile {
  const fail = (m: string): never => {
    throw new SafetensorsError(`${file}: ${m}`);
  };
  const hlen = headerLength(buf.subarray(0, 8), buf.byteLength, fail);
  const { entries, metadata } = checkHeader(buf.subarray(8, 8 + hlen), buf.byteLength - 8 - hlen, fail);
  const tensors = new Map<string, StTensor>();
  for (const e of entries)
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: buf.subarray(8 + hlen + e.begin, 8 + hlen + e.end) });
  return { tensors, metadata };
}

export function ioError(path: string, e: unknown): SafetensorsError {
  const code = (e as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT'
      ? 'no such file'
      : code === 'EISDIR'
        ? 'is a folder, expected a .safetensors file'
        : code === 'EACCES'
          ? 'permission denied'
          : `cannot read (${code ?? (e as Error).message})`;
  return new SafetensorsError(`${path}: ${why}`);
}

/** Reads and parses a file; an unreadable path (missing, a folder, no permission) is a SafetensorsError too. */
export function readSafetensors(path: string): StFile {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_FS_FILE_TOO_LARGE') {
      throw new SafetensorsError(`${path}: larger than 2 GiB: read it with openWeights (one tensor at a time)`);
    }
    throw ioError(path, e);
  }
  return parseSafetensors(buf, path);
}

export function serializeSafetensors(
  tensors: Map<string, StTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
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

export function writeSafetensors(
  path: string,
  tensors: Map<string, StTensor>,
  metadata: Record<string, string> = {},
): void {
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

/**
 * A copy of the bytes in a fresh, aligned buffer: a view into a file buffer need not be aligned to
 * its element size, and a Node Buffer's slice() is a view of the shared pool, not a copy.
 */
function aligned(data: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(data.byteLength);
  copy.set(data);
  return copy.buffer;
}

/** Values as float32, decoding F16 and BF16 (bfloat16 is the top half of a float32). */
export function asFloat32(t: StTensor): Float32Array {
  if (t.dtype === 'BF16') {
    const bits = new Uint16Array(aligned(t.data));
    const out = new Uint32Array(bits.length);
    for (let i = 0; i < bits.length; i++) out[i] = bits[i] << 16;
    return new Float32Array(out.buffer);
  }
  if (t.dtype === 'F16') return decodeHalf(new Uint16Array(aligned(t.data)));
  if (t.dtype !== 'F32') throw new SafetensorsError(`expected F32, F16 or BF16, got ${t.dtype}`);
  return new Float32Array(aligned(t.data));
}

/** Integer values (I32, U8, or I64 such as CLIP's position_ids) as int32; I64 outside int32 is an error. */
export function asInt32(t: StTensor): Int32Array {
  if (t.dtype === 'I32') return new Int32Array(aligned(t.data));
  if (t.dtype === 'U8') return Int32Array.from(t.data);
  if (t.dtype === 'I64') {
    const big = new BigInt64Array(aligned(t.data));
    const out = new Int32Array(big.length);
    for (let i = 0; i < big.length; i++) {
      if (big[i] > 2147483647n || big[i] < -2147483648n)
        throw new SafetensorsError(`I64 value ${big[i]} at index ${i} does not fit int32`);
      out[i] = Number(big[i]);
    }
    return out;
  }
  throw new SafetensorsError(`expected an integer dtype (I64, I32, U8), got ${t.dtype}`);
}
