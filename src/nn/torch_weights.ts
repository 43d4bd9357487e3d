/**
 * Weights published for PyTorch models (pytorch-fid, transformers, diffusers), loaded strictly into
 * a Params store under their own names. PyTorch keeps convolution kernels as [out, in, kh, kw];
 * our convolutions are NHWC with [kh, kw, in, out] kernels, so rank-4 tensors are transposed once
 * here. Linear weights keep PyTorch's [out, in]: the models multiply by their transpose, which
 * tfjs's matMul does without a copy.
 */
import { Params, ParamsError, type LoadedTensor } from './params.js';
import { asFloat32, openWeights, type WeightSource } from '../util/safetensors.js';

export interface TorchLoadOptions {
  /** Tensors of the file the model never uses (buffers such as position_ids): left out, not an error. */
  ignore?: (name: string) => boolean;
  /** A known older layout's names → the model's (e.g. a VAE's query/key/value → to_q/to_k/to_v). */
  rename?: (name: string) => string;
}

/** [O, I, kh, kw] → [kh, kw, I, O]. */
export function oihwToHwio(v: Float32Array, [o, i, h, w]: number[]): Float32Array {
  const out = new Float32Array(v.length);
  for (let a = 0; a < o; a++)
    for (let b = 0; b < i; b++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[((y * w + x) * i + b) * o + a] = v[((a * i + b) * h + y) * w + x];
  return out;
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
    if (t.shape.length === 4) {
      const [o, i, h, w] = t.shape;
      yield [as, { shape: [h, w, i, o], values: oihwToHwio(values, t.shape) }];
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
