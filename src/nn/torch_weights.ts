/**
 * Weights published for PyTorch models (pytorch-fid, transformers, diffusers), loaded strictly into
 * a Params store under their own names. PyTorch keeps convolution kernels as [out, in, kh, kw];
 * our convolutions are NHWC with [kh, kw, in, out] kernels, so rank-4 tensors are transposed once
 * here (and batch-1 rank-5 kernels squeezed first); NCHW tensors named by `nchw` become NHWC.
 * Linear weights keep PyTorch's [out, in]: the models multiply by their transpose, which tfjs's
 * matMul does without a copy. torchLayout / writeTorchWeights write a store back in that layout
 * (the weights a torch twin loads where TS made them: paper-random-tiny).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Params, ParamsError, type LoadedTensor } from './params.js';
import { writeFileAtomic } from '../util/atomic.js';
import { sha256 } from '../util/hash.js';
import { asFloat32, f32, serializeSafetensors, type StTensor } from '../util/safetensors.js';
import { openWeights, type WeightSource } from '../util/safetensors_lazy.js';

export interface TorchLoadOptions {
  /** Tensors of the file the model never uses (buffers such as position_ids): left out, not an error. */
  ignore?: (name: string) => boolean;
  /** A known older layout's names → the model's (e.g. a VAE's query/key/value → to_q/to_k/to_v). */
  rename?: (name: string) => string;
  /** Tensors that are NCHW activations or buffers (StyleGAN2's constant input, noise maps), not kernels: → NHWC. */
  nchw?: (name: string) => boolean;
}

/** A rank-4 row-major array with its axes reordered: output axis k is input axis perm[k]. */
function transpose4(v: Float32Array, shape: number[], perm: [number, number, number, number]): Float32Array {
  const out = new Float32Array(v.length);
  const stride = [shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1];
  const [s0, s1, s2, s3] = perm.map((p) => stride[p]);
  const [n0, n1, n2, n3] = perm.map((p) => shape[p]);
  let o = 0;
  for (let a = 0; a < n0; a++)
    for (let b = 0; b < n1; b++)
      for (let c = 0; c < n2; c++) for (let d = 0; d < n3; d++) out[o++] = v[a * s0 + b * s1 + c * s2 + d * s3];
  return out;
}

/** [O, I, kh, kw] → [kh, kw, I, O]. */
function oihwToHwio(v: Float32Array, shape: number[]): Float32Array {
  return transpose4(v, shape, [2, 3, 1, 0]);
}

/** [kh, kw, I, O] → [O, I, kh, kw] (oihwToHwio's inverse). */
function hwioToOihw(v: Float32Array, shape: number[]): Float32Array {
  return transpose4(v, shape, [3, 2, 0, 1]);
}

/** [N, H, W, C] → [N, C, H, W]. */
function nhwcToNchw(v: Float32Array, shape: number[]): Float32Array {
  return transpose4(v, shape, [0, 3, 1, 2]);
}

/** [N, C, H, W] → [N, H, W, C]. */
function nchwToNhwc(v: Float32Array, shape: number[]): Float32Array {
  return transpose4(v, shape, [0, 2, 3, 1]);
}

function* torchTensors(src: WeightSource, opts: TorchLoadOptions): Generator<readonly [string, LoadedTensor]> {
  const from = new Map<string, string>();
  for (const name of src.names()) {
    if (opts.ignore?.(name)) continue;
    const t = src.read(name);
    const values = asFloat32(t);
    const as = opts.rename ? opts.rename(name) : name;
    // Two layouts of one tensor in one file: neither may silently win.
    if (from.has(as)) throw new ParamsError(`${src.path}: ${name} and ${from.get(as)} are both ${as}`);
    from.set(as, name);
    // A batch-1 kernel [1, O, I, kh, kw] (StyleGAN2's modulated convolutions) is an OIHW kernel.
    const kernel = t.shape.length === 5 && t.shape[0] === 1 ? t.shape.slice(1) : t.shape;
    if (t.shape.length === 4 && opts.nchw?.(as)) {
      const [n, c, h, w] = t.shape;
      yield [as, { shape: [n, h, w, c], values: nchwToNhwc(values, t.shape) }];
    } else if (kernel.length === 4) {
      const [o, i, h, w] = kernel;
      yield [as, { shape: [h, w, i, o], values: oihwToHwio(values, kernel) }];
    } else yield [as, { shape: t.shape, values }];
  }
}

/**
 * A strict store of a PyTorch-layout safetensors file (or sharded index), one tensor read at a
 * time. Call `verify` with the model's forward to name missing and unexpected tensors.
 */
export function loadTorchWeights(path: string, opts: TorchLoadOptions = {}): Params {
  const src = openWeights(path);
  try {
    return Params.loaded(path, torchTensors(src, opts));
  } finally {
    src.close();
  }
}

/**
 * loadTorchWeights, then one `forward` of the model on a tiny input: the file must hold exactly
 * the tensors the model reads, in its shapes (Params.verify), or nothing is kept.
 */
export function loadVerified(path: string, forward: (p: Params) => unknown, opts: TorchLoadOptions = {}): Params {
  const p = loadTorchWeights(path, opts);
  try {
    p.verify(forward);
  } catch (e) {
    p.dispose();
    throw e;
  }
  return p;
}

export interface TorchWriteOptions {
  /** Tensors that are NHWC activations or buffers in the store, NCHW in the file (as TorchLoadOptions.nchw). */
  nchw?: (name: string) => boolean;
  /** Kernels the file keeps batched, [1, O, I, kh, kw] (StyleGAN2's modulated convolutions). */
  batched?: (name: string) => boolean;
}

/**
 * A store in PyTorch's layout, as diffusers, transformers and tools/convert_*.py publish it: the
 * inverse of loadTorchWeights with the same options (kernels HWIO → OIHW, NHWC buffers → NCHW),
 * everything else as it is. Values are read with awaited data() (no sync read: GPU backends).
 */
async function torchLayout(p: Params, opts: TorchWriteOptions = {}): Promise<Map<string, StTensor>> {
  const out = new Map<string, StTensor>();
  for (const [name, v] of p.vars) {
    const values = (await v.data()) as Float32Array;
    const shape = v.shape;
    if (shape.length !== 4) out.set(name, f32(shape, Float32Array.from(values)));
    else if (opts.nchw?.(name)) out.set(name, f32([shape[0], shape[3], shape[1], shape[2]], nhwcToNchw(values, shape)));
    else {
      const oihw = [shape[3], shape[2], shape[0], shape[1]];
      out.set(name, f32(opts.batched?.(name) ? [1, ...oihw] : oihw, hwioToOihw(values, shape)));
    }
  }
  return out;
}

/**
 * A store's torch-layout file in `dir`, named by the SHA-256 of its bytes (so equal weights are
 * written once and a file is never rewritten under readers), written atomically.
 */
export async function writeTorchWeights(
  dir: string,
  p: Params,
  opts: TorchWriteOptions = {},
): Promise<{ weights: string; sha256: string }> {
  const bytes = serializeSafetensors(await torchLayout(p, opts));
  const hex = sha256(bytes);
  const file = join(dir, `${hex}.safetensors`);
  if (!existsSync(file)) writeFileAtomic(file, bytes);
  return { weights: file, sha256: hex };
}
