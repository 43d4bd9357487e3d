/**
 * Reading a diffusers model folder: `config.json` (checked key by key, one-line errors naming the
 * file and key) and `diffusion_pytorch_model.safetensors` (or its sharded index).
 *
 * No key is ignored silently: a parser reads every key it implements through ConfigReader, names
 * the keys that cannot change inference (with the reason) in `irrelevant`, and `finish` refuses
 * whatever is left — a setting from a newer diffusers, or a typo, stops the load in one line.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../errors.js';

export type Json = Record<string, unknown>;

export function readJsonObject(file: string): Json {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf-8'));
  } catch (e) {
    throw new UserError(`${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UserError(`${file}: not a JSON object`);
  return v as Json;
}

/**
 * diffusers drops keys starting with "_" before configuring a model (extract_init_dict): they are
 * its bookkeeping (_class_name, _diffusers_version, _name_or_path, …), never settings.
 */
const isBookkeeping = (key: string) => key.startsWith('_');

/** The first key of `o` that is neither bookkeeping nor in `known`, refused in one line. */
export function refuseUnknownKeys(file: string, o: Json, known: ReadonlySet<string>): void {
  const unknown = Object.keys(o).find((k) => !isBookkeeping(k) && !known.has(k));
  if (unknown !== undefined)
    throw new UserError(
      `${file}: ${unknown}: not a setting this loader implements (${JSON.stringify(o[unknown])}); refused rather than ignored`,
    );
}

/** Typed accessors over one config file: a wrong or missing value names the file and key. */
export class ConfigReader {
  private readonly seen = new Set<string>();

  constructor(
    readonly file: string,
    private readonly o: Json,
  ) {}

  /**
   * The file's value of a key (marking it read), or the fallback when the key is absent. A null
   * in the file is a value, not an absence: diffusers passes it on (norm_num_groups null skips
   * the norms, flip_sin_to_cos null counts as false), so the typed accessors refuse it.
   */
  value(key: string, fallback?: unknown): unknown {
    this.seen.add(key);
    return Object.prototype.hasOwnProperty.call(this.o, key) ? this.o[key] : fallback;
  }

  /**
   * Keys that cannot change what this port computes, each with the reason (kept next to the
   * parser, so the list is reviewed with it): they are accepted whatever their value.
   */
  irrelevant(keys: Record<string, string>): void {
    for (const k of Object.keys(keys)) this.seen.add(k);
  }

  /** After parsing: every key of the file was read or declared irrelevant, or the load stops. */
  finish(): void {
    refuseUnknownKeys(this.file, this.o, this.seen);
  }

  static of(dir: string): ConfigReader {
    return new ConfigReader(join(dir, 'config.json'), readJsonObject(join(dir, 'config.json')));
  }

  num(key: string, fallback?: number): number {
    const v = this.value(key, fallback);
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new UserError(`${this.file}: ${key} must be a number (got ${JSON.stringify(v)})`);
    return v;
  }

  int(key: string, fallback?: number): number {
    const v = this.num(key, fallback);
    if (!Number.isInteger(v) || v < 0)
      throw new UserError(`${this.file}: ${key} must be a non-negative integer (got ${v})`);
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.value(key, fallback);
    if (typeof v !== 'boolean')
      throw new UserError(`${this.file}: ${key} must be true or false (got ${JSON.stringify(v)})`);
    return v;
  }

  str(key: string, fallback?: string): string {
    const v = this.value(key, fallback);
    if (typeof v !== 'string') throw new UserError(`${this.file}: ${key} must be a string (got ${JSON.stringify(v)})`);
    return v;
  }

  /** A list of strings or positive integers; `scalarOk` lets a single value stand for every entry. */
  list<T extends 'string' | 'number'>(
    key: string,
    type: T,
    fallback?: (T extends 'string' ? string : number)[],
  ): (T extends 'string' ? string : number)[] {
    const v = this.value(key, fallback);
    if (!Array.isArray(v) || v.length === 0 || v.some((e) => typeof e !== type))
      throw new UserError(`${this.file}: ${key} must be a non-empty list of ${type}s (got ${JSON.stringify(v)})`);
    return v as (T extends 'string' ? string : number)[];
  }

  /** A value that is either one number or a list with one number per block. */
  perBlock(key: string, blocks: number, fallback: number): number[] {
    const v = this.value(key, fallback);
    if (typeof v === 'number') return Array(blocks).fill(v);
    if (Array.isArray(v) && v.length === blocks && v.every((e) => typeof e === 'number')) return v as number[];
    throw new UserError(
      `${this.file}: ${key} must be a number or a list of ${blocks} numbers (got ${JSON.stringify(v)})`,
    );
  }

  /** act_fn: SiLU, under any of diffusers' names for it (get_activation lower-cases: silu, swish). */
  silu(key = 'act_fn'): void {
    const v = this.value(key, 'silu');
    if (typeof v !== 'string' || !['silu', 'swish'].includes(v.toLowerCase()))
      throw new UserError(`${this.file}: ${key} ${JSON.stringify(v)} is not supported (supported: "silu", "swish")`);
  }

  /** Refuses a setting the port does not implement, instead of running something else quietly. */
  only<T>(key: string, allowed: T[], fallback: T): T {
    const v = this.value(key, fallback) as T;
    if (!allowed.some((a) => JSON.stringify(a) === JSON.stringify(v)))
      throw new UserError(
        `${this.file}: ${key} ${JSON.stringify(v)} is not supported (supported: ${allowed.map((a) => JSON.stringify(a)).join(', ')})`,
      );
    return v;
  }
}

/** The weights of a diffusers model folder. */
export function diffusersWeights(dir: string): string {
  for (const f of ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.safetensors.index.json'])
    if (existsSync(join(dir, f))) return join(dir, f);
  const bin = existsSync(join(dir, 'diffusion_pytorch_model.bin'))
    ? ' (diffusion_pytorch_model.bin is a PyTorch pickle: publish or convert to safetensors)'
    : '';
  throw new UserError(`${dir}: no diffusion_pytorch_model.safetensors${bin}`);
}
