/**
 * The method contract over the run folder (docs/method-contract.md, `contract: 1`): what the
 * harness writes into <run>/contract/in/ for a method that runs in another process, and how it
 * reads what that process wrote into <run>/contract/out/. Arrays travel as float32 .npy; every
 * file on either side is written whole (temp file + rename), so a reader never takes half of one.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../util/atomic.js';
import type { ContractModel } from '../world/types.js';

export const CONTRACT_VERSION = 1;

export interface ContractDirs {
  root: string;
  in: string;
  out: string;
}

export function contractDirs(runDir: string): ContractDirs {
  const root = join(runDir, 'contract');
  return { root, in: join(root, 'in'), out: join(root, 'out') };
}

/** A float32 array in a .npy file of contract/in or contract/out. */
export interface ArrayRef {
  /** File name inside the folder. */
  file: string;
  shape: number[];
  dtype: 'float32';
}

/** A harness-drawn stream: standard normal values of src/util/rng.ts, in C order. */
export interface NoiseRef extends ArrayRef {
  /** The Rng seed: parseInt(sha256(`${run seed}:contract:${name}`)[0:8], 16), for a port of the RNG. */
  rng_seed: number;
}

/** contract/in/manifest.json. */
export interface Manifest {
  contract: number;
  method: string;
  run_id: string;
  seed: number;
  /** Every parameter of the run, defaults filled: the plugin reads `params.settings`, never a default of its own. */
  params: Record<string, unknown>;
  world: {
    name: string;
    image_size: number;
    /** The world's outside files by role (absolute paths); empty for an embedded world. */
    files: Record<string, string>;
    fingerprint: Record<string, string>;
    /** W+ shape of a world with a style generator, else null. */
    wplus: { levels: number; dim: number } | null;
    /** True when the world's images are G(w) of codes: the plugin then writes originals.npy. */
    from_codes: boolean;
  };
  prompt: {
    id: string;
    text: string;
    source_text: string;
    attribute: string;
    source: string;
    target: string;
    group: string;
    token_ids: number[] | null;
  };
  inputs: {
    /** The m evaluation images, NHWC in [0, 1] (null in a world of codes: see source_codes). */
    sources: ArrayRef | null;
    /** Their W+ codes [m, levels, dim], where the world has them. */
    source_codes: ArrayRef | null;
    /** n training images NHWC (train_images > 0 in an image world). */
    train: ArrayRef | null;
    /** n training codes (train_images > 0 in a world of codes). */
    train_codes: ArrayRef | null;
    noise: Record<string, NoiseRef>;
  };
  outputs: { edited: ArrayRef; originals: ArrayRef | null };
  /** A built-in method on another engine (the torch engine): what its twin needs besides the arrays. */
  engine?: EngineBlock;
}

/** manifest.engine (docs/torch-engine.md). */
export interface EngineBlock {
  name: string;
  precision: 'fp32' | 'tf32' | 'fp16';
  /** auto: CUDA when the process sees a device, else the CPU. */
  device: 'auto' | 'cpu' | 'cuda';
  /** The world's weights by model (WorldContract.models). */
  models: Record<string, ContractModel>;
  /** Our tokenizer's ids of the prompt's text, its source text and the empty prompt. */
  tokens: { text: number[]; source_text: number[]; empty: number[] };
  /** The method's own, resolved by its TS twin (TorchTwin.plan). */
  plan: Record<string, unknown>;
}

// ---------------------------------------------------------------- float32 .npy

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

/** Writes a little-endian float32 C-order .npy (version 1.0), atomically. */
export function writeNpyF32(path: string, shape: number[], data: Float32Array): void {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${dims}, }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  MAGIC.copy(head);
  head[6] = 1;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  writeFileAtomic(path, Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}

/**
 * Reads a .npy that must be float32 little-endian in C order with exactly `shape`; anything else
 * (not a regular file, a link, another dtype or shape, short or long data) is one line naming `where`.
 */
export function readNpyF32(path: string, where: string, shape: number[]): Float32Array {
  const fail = (m: string): never => {
    throw new ContractError(`${where}: ${m}`);
  };
  if (!existsSync(path)) fail('missing');
  if (!lstatSync(path).isFile()) fail('not a regular file (links are not taken)');
  const buf = readFileSync(path);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) fail('not a .npy file (bad magic)');
  const major = buf[6];
  const start = major === 1 ? 10 : 12;
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  if (start + hlen > buf.length) fail('truncated header');
  const header = buf.subarray(start, start + hlen).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  if (descr !== '<f4') fail(`dtype ${descr ?? '?'}, expected float32 ('<f4')`);
  if (/'fortran_order':\s*True/.test(header)) fail('Fortran order, expected C order');
  const dims = /'shape':\s*\(([^)]*)\)/
    .exec(header)?.[1]
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (!dims || dims.join(',') !== shape.join(','))
    fail(`shape [${dims?.join(', ') ?? '?'}], expected [${shape.join(', ')}]`);
  const bytes = shape.reduce((a, b) => a * b, 1) * 4;
  if (buf.length - start - hlen !== bytes) fail(`${buf.length - start - hlen} data bytes, expected ${bytes}`);
  // A copy: the Buffer's offset need not be 4-aligned.
  return new Float32Array(buf.buffer.slice(buf.byteOffset + start + hlen, buf.byteOffset + start + hlen + bytes));
}

// ---------------------------------------------------------------- outputs

/** Bad output of a method process: the run fails with this one line. */
export class ContractError extends Error {}

/** A JSON file of contract/out checked against its schema; one line naming the file and key otherwise. */
export function readOutJson<T>(dirs: ContractDirs, name: string, schema: z.ZodType<T>): T {
  const where = `contract/out/${name}`;
  const path = join(dirs.out, name);
  if (!existsSync(path)) throw new ContractError(`${where}: missing`);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf-8'));
  } catch (e) {
    throw new ContractError(`${where}: not JSON (${(e as Error).message.split('\n')[0]})`);
  }
  return parseOut(schema, value, where);
}

export function parseOut<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new ContractError(`${where}: ${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`);
}

/** How many values are NaN or ±Inf, and the first image holding one. */
export function nonFinite(data: Float32Array, per: number): { count: number; firstImage: number } {
  let count = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    if (Number.isFinite(data[i])) continue;
    if (first < 0) first = Math.floor(i / per);
    count++;
  }
  return { count, firstImage: first };
}

/**
 * A fresh attempt: out/ keeps only what a resumed method needs (checkpoint/ and its training
 * curve), so no output of an earlier attempt is ever taken for this one's. The curve is cut back
 * to the steps before the checkpoint's (checkpoint/state.json's `step`; none: all of it) here,
 * before the method starts, as in-process runs are (src/exec/context.ts): the method only appends.
 */
export function prepareAttempt(dirs: ContractDirs): void {
  rmSync(dirs.in, { recursive: true, force: true });
  mkdirSync(dirs.in, { recursive: true });
  mkdirSync(dirs.out, { recursive: true });
  for (const name of readdirSync(dirs.out)) {
    if (name !== 'checkpoint' && name !== 'metrics.jsonl')
      rmSync(join(dirs.out, name), { recursive: true, force: true });
  }
  const curve = join(dirs.out, 'metrics.jsonl');
  if (!existsSync(curve)) return;
  const from = existsSync(join(dirs.out, 'checkpoint', 'state.json'))
    ? readOutJson(dirs, 'checkpoint/state.json', stateSchema).step
    : 0;
  // Whole lines of earlier steps only: a line torn by a kill, or of a step to be redone, goes.
  const kept = readFileSync(curve, 'utf-8')
    .split('\n')
    .slice(0, -1)
    .filter((line) => stepOf(line) < from);
  writeFileAtomic(curve, kept.map((l) => `${l}\n`).join(''));
}

const stateSchema = z.object({ step: z.number().int().min(0) });

function stepOf(line: string): number {
  try {
    const step = (JSON.parse(line) as { step?: unknown }).step;
    return typeof step === 'number' ? step : Infinity;
  } catch {
    return Infinity;
  }
}

/**
 * After a finished run: the arrays (the inputs can be rebuilt, the edits are measured) and the
 * checkpoint go; the JSON stays.
 */
export function pruneFinished(dirs: ContractDirs): void {
  rmSync(join(dirs.out, 'checkpoint'), { recursive: true, force: true });
  for (const dir of [dirs.in, dirs.out]) {
    for (const name of readdirSync(dir)) if (name.endsWith('.npy')) rmSync(join(dir, name), { force: true });
  }
}
