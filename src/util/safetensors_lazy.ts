/**
 * Weights read lazily, one tensor at a time: a safetensors file of any size (its header checked as
 * parseSafetensors checks a whole file), or the shards of a `*.safetensors.index.json`.
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  checkHeader,
  headerLength,
  ioError,
  isPlainObject,
  SafetensorsError,
  showName,
  type Entry,
  type Header,
  type StDtype,
  type StTensor,
} from './safetensors.js';

/** Where a weights source's tensors come from, read one at a time (a file, or the shards of an index). */
export interface WeightSource {
  readonly path: string;
  readonly metadata: Record<string, string>;
  names(): string[];
  info(name: string): { dtype: StDtype; shape: number[] };
  /** The tensor's bytes, read now (the source keeps none of them). */
  read(name: string): StTensor;
  close(): void;
}

/**
 * A safetensors file read lazily: opening reads and checks the header only (the same checks as
 * parseSafetensors, against the file's size); each read() fetches one tensor's byte range. Works
 * for files of any size (a real SD UNet in fp32 is 3.4 GB; Node refuses readFileSync above 2 GiB).
 */
export class SafetensorsFile implements WeightSource {
  readonly metadata: Record<string, string>;
  private readonly entries: Map<string, Entry>;
  private readonly dataStart: number;
  private fd: number | null;

  private constructor(
    readonly path: string,
    fd: number,
    header: Header,
  ) {
    this.fd = fd;
    this.metadata = header.metadata;
    this.dataStart = header.dataStart;
    this.entries = new Map(header.entries.map((e) => [e.name, e]));
  }

  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw ioError(path, e);
    }
    try {
      const fail = (m: string): never => {
        throw new SafetensorsError(`${path}: ${m}`);
      };
      const st = fstatSync(fd);
      if (st.isDirectory()) throw ioError(path, Object.assign(new Error('dir'), { code: 'EISDIR' }));
      const size = st.size;
      const first = readRange(fd, 0, Math.min(8, size), path);
      const hlen = headerLength(first, size, fail);
      const { entries, metadata } = checkHeader(readRange(fd, 8, hlen, path), size - 8 - hlen, fail);
      return new SafetensorsFile(path, fd, { entries, metadata, dataStart: 8 + hlen });
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): { dtype: StDtype; shape: number[] } {
    const e = this.entry(name);
    return { dtype: e.dtype, shape: e.shape };
  }

  read(name: string): StTensor {
    const e = this.entry(name);
    if (this.fd === null) throw new SafetensorsError(`${this.path}: read ${showName(name)} after close`);
    return {
      dtype: e.dtype,
      shape: e.shape,
      data: readRange(this.fd, this.dataStart + e.begin, e.end - e.begin, this.path),
    };
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new SafetensorsError(`${this.path}: no tensor ${showName(name)}`);
    return e;
  }
}

/** `length` bytes at `position`, in a fresh buffer; a short read (the file shrank) is an error. */
function readRange(fd: number, position: number, length: number, path: string): Uint8Array {
  const out = new Uint8Array(length);
  let got = 0;
  try {
    // readSync reads at most ~2 GiB per call: loop.
    while (got < length) {
      const n = readSync(fd, out, got, Math.min(length - got, 1 << 30), position + got);
      if (n === 0) break;
      got += n;
    }
  } catch (e) {
    throw ioError(path, e);
  }
  if (got !== length) throw new SafetensorsError(`${path}: truncated: ${got} of ${length} bytes at offset ${position}`);
  return out;
}

/**
 * The shards of a `*.safetensors.index.json` (the transformers/diffusers layout: {"metadata": …,
 * "weight_map": {tensor name: shard file}}), as one source. Every shard is opened (headers
 * checked) up front, and the map must match the shards exactly: a name mapped to a shard that
 * lacks it, or a shard tensor the map does not list, is an error naming both.
 */
class ShardedSafetensors implements WeightSource {
  readonly metadata: Record<string, string> = {};
  private readonly owner = new Map<string, SafetensorsFile>();
  private readonly shards: SafetensorsFile[] = [];

  private constructor(readonly path: string) {}

  static open(indexPath: string): ShardedSafetensors {
    const fail = (m: string): never => {
      throw new SafetensorsError(`${indexPath}: ${m}`);
    };
    let index: unknown;
    try {
      index = JSON.parse(readFileSync(indexPath, 'utf-8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code) throw ioError(indexPath, e);
      return fail(`not valid JSON (${(e as Error).message.split('\n')[0].slice(0, 80)})`);
    }
    if (!isPlainObject(index) || !isPlainObject(index.weight_map))
      return fail('expected {"weight_map": {tensor: shard file}}');
    const map = index.weight_map;
    const self = new ShardedSafetensors(indexPath);
    try {
      const files = new Map<string, SafetensorsFile>();
      for (const [name, file] of Object.entries(map)) {
        if (typeof file !== 'string' || file.includes('/') || file.includes('\\') || file === '..' || file === '.') {
          fail(
            `weight_map.${showName(name)}: expected a shard file name next to the index, got ${JSON.stringify(file)?.slice(0, 60)}`,
          );
        }
        let shard = files.get(file as string);
        if (!shard) {
          shard = SafetensorsFile.open(join(dirname(indexPath), file as string));
          files.set(file as string, shard);
          self.shards.push(shard);
        }
        if (!shard.has(name)) fail(`weight_map.${showName(name)}: ${file as string} has no such tensor`);
        self.owner.set(name, shard);
      }
      for (const shard of self.shards) {
        const extra = shard.names().find((n) => self.owner.get(n) !== shard);
        if (extra !== undefined)
          fail(
            `${shard.path} holds ${showName(extra)}, which weight_map ${self.owner.has(extra) ? 'assigns to another shard' : 'does not list'}`,
          );
      }
      if (isPlainObject(index.metadata)) {
        for (const [k, v] of Object.entries(index.metadata)) self.metadata[k] = String(v);
      }
      return self;
    } catch (e) {
      self.close();
      throw e;
    }
  }

  names(): string[] {
    return [...this.owner.keys()];
  }

  info(name: string): { dtype: StDtype; shape: number[] } {
    return this.shard(name).info(name);
  }

  read(name: string): StTensor {
    return this.shard(name).read(name);
  }

  close(): void {
    for (const s of this.shards) s.close();
  }

  private shard(name: string): SafetensorsFile {
    const s = this.owner.get(name);
    if (!s) throw new SafetensorsError(`${this.path}: no tensor ${showName(name)}`);
    return s;
  }
}

/** A weights file or a sharded index, opened lazily. */
export function openWeights(path: string): WeightSource {
  return path.endsWith('.index.json') ? ShardedSafetensors.open(path) : SafetensorsFile.open(path);
}
