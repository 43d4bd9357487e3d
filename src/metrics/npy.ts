/**
 * NumPy .npy and .npz, as pytorch-fid reads and writes its statistics (`mu`, `sigma`): float32 or
 * float64, little-endian, C or Fortran order; .npz is a zip of .npy files (fflate, stored or
 * deflated).
 */
import { readFileSync } from 'node:fs';
import { unzipSync, zipSync } from 'fflate';
import { writeFileAtomic } from '../util/atomic.js';

export interface NpyArray {
  shape: number[];
  data: Float64Array;
}

export class NpyError extends Error {}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

function parseNpy(buf: Uint8Array, where = '<npy>'): NpyArray {
  const fail = (m: string): never => {
    throw new NpyError(`${where}: ${m}`);
  };
  if (buf.length < 10 || MAGIC.some((b, i) => buf[i] !== b)) fail('not a .npy file (bad magic)');
  const major = buf[6];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const hlen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (start + hlen > buf.length) fail('truncated header');
  const header = new TextDecoder().decode(buf.subarray(start, start + hlen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1] === 'True';
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) fail(`unreadable header ${header.trim()}`);
  const shape = shapeText!
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const off = start + hlen;
  const width = descr === '<f8' ? 8 : descr === '<f4' ? 4 : fail(`dtype ${descr} not supported (float32/float64 only)`);
  if (off + count * (width as number) > buf.length)
    fail(`truncated data: ${count} values of ${descr} need ${count * (width as number)} bytes`);
  const data = new Float64Array(count);
  for (let i = 0; i < count; i++)
    data[i] = width === 8 ? view.getFloat64(off + 8 * i, true) : view.getFloat32(off + 4 * i, true);
  return { shape, data: fortran && shape.length === 2 ? transpose(data, shape[1], shape[0]) : data };
}

function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

function serializeNpy(arr: NpyArray): Uint8Array {
  const shape = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
  let header = `{'descr': '<f8', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + arr.data.length * 8);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  const view = new DataView(out.buffer);
  arr.data.forEach((v, i) => view.setFloat64(10 + header.length + 8 * i, v, true));
  return out;
}

export function readNpz(path: string): Map<string, NpyArray> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(new Uint8Array(readFileSync(path)));
  } catch (e) {
    throw new NpyError(`${path}: not a readable .npz (${(e as Error).message})`);
  }
  const out = new Map<string, NpyArray>();
  for (const [name, bytes] of Object.entries(files))
    out.set(name.replace(/\.npy$/, ''), parseNpy(bytes, `${path}:${name}`));
  return out;
}

export function writeNpz(path: string, arrays: Record<string, NpyArray>): void {
  const files: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(arrays)) files[`${k}.npy`] = serializeNpy(v);
  writeFileAtomic(path, zipSync(files, { level: 0 }));
}
