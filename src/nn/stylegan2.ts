/**
 * The StyleGAN2 generator as rosinality's stylegan2-pytorch defines it (the `g_ema` of
 * stylegan2-ffhq-config-f.pt that StyleCLIP and the SDD code load), under its parameter names:
 * the mapping network (PixelNorm + EqualLinear with lr_mul and fused leaky ReLU), the constant
 * input, modulated 3×3 convolutions with demodulation, the fixed noise buffers (randomize_noise
 * False, as SDD and StyleCLIP generate), upfirdn2d blur after each upsampling convolution, and the
 * toRGB skips with [1, 3, 3, 1] upsampling. Images are NHWC in [-1, 1]; everything is
 * differentiable w.r.t. W+ (SDD backpropagates through G).
 *
 * A modulated convolution is computed as scale the input by the style, convolve with the shared
 * kernel, scale the output by the demodulation coefficients: the same linear map as the reference's
 * per-sample grouped kernels (tfjs has no grouped convolution), with one kernel for the batch.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Params } from './params.js';
import { loadVerified, type TorchWriteOptions } from './torch_weights.js';
import { UserError } from '../errors.js';
import { asFloat32 } from '../util/safetensors.js';
import { openWeights } from '../util/safetensors_lazy.js';

export interface StyleGan2Config {
  size: number;
  styleDim: number;
  nMlp: number;
  channelMultiplier: number;
  lrMlp: number;
  /** Channels per resolution, where they differ from rosinality's table (small random worlds only). */
  channels?: Record<number, number>;
}

/** stylegan2-ffhq-config-f.pt: 1024², W+ of 18 × 512, 8 mapping layers, channel multiplier 2. */
export const FFHQ_CONFIG_F: StyleGan2Config = { size: 1024, styleDim: 512, nMlp: 8, channelMultiplier: 2, lrMlp: 0.01 };

const LRELU_GAIN = Math.SQRT2;

function channelsAt(c: StyleGan2Config, res: number): number {
  if (c.channels?.[res] !== undefined) return c.channels[res];
  return res <= 32 ? 512 : (16 * 1024 * c.channelMultiplier) / res;
}

function logSize(c: StyleGan2Config): number {
  const l = Math.log2(c.size);
  if (!Number.isInteger(l) || l < 2) throw new UserError(`StyleGAN2 size ${c.size}: a power of two ≥ 4 is needed`);
  return l;
}

/** W+ levels: 2·log2(size) − 2 (18 at 1024²). */
export function nLatent(c: StyleGan2Config): number {
  return logSize(c) * 2 - 2;
}

/** EqualLinear: x·(W·lr_mul/√in)ᵀ + b·lr_mul, then (activation) leaky ReLU 0.2 × √2. */
function equalLinear(
  p: Params,
  name: string,
  x: tf.Tensor2D,
  out: number,
  lrMul: number,
  bias: { init: number; activate: boolean },
): tf.Tensor2D {
  const inDim = x.shape[1];
  const w = p.get(`${name}.weight`, [out, inDim], { kind: 'normal', std: 1 / lrMul });
  const b = p.get(`${name}.bias`, [out], bias.init === 1 ? { kind: 'ones' } : { kind: 'zeros' });
  const y = tf.add(tf.matMul(x, tf.mul(w, lrMul / Math.sqrt(inDim)), false, true), tf.mul(b, lrMul));
  return bias.activate ? (tf.mul(tf.leakyRelu(y, 0.2), LRELU_GAIN) as tf.Tensor2D) : (y as tf.Tensor2D);
}

/** The mapping network z [B, dim] → w [B, dim]. */
export function mapping(p: Params, c: StyleGan2Config, z: tf.Tensor2D): tf.Tensor2D {
  let x = tf.mul(z, tf.rsqrt(tf.add(tf.mean(tf.square(z), 1, true), 1e-8))) as tf.Tensor2D;
  for (let i = 1; i <= c.nMlp; i++)
    x = equalLinear(p, `style.${i}`, x, c.styleDim, c.lrMlp, { init: 0, activate: true });
  return x;
}

/** w_avg + ψ (w − w_avg): truncation toward the average latent. */
export function truncate(w: tf.Tensor, avg: tf.Tensor1D, psi: number): tf.Tensor {
  return psi === 1 ? w : tf.add(avg, tf.mul(tf.sub(w, avg), psi));
}

/**
 * upfirdn2d (up, pad, FIR kernel, no down) per channel: zero-insertion, zero padding, then a
 * depthwise convolution with the flipped kernel, as the reference's native path.
 */
function upfirdn2d(x: tf.Tensor4D, kernel: tf.Tensor2D, up: 1 | 2, pad: [number, number]): tf.Tensor4D {
  const [b, h, w, ch] = x.shape;
  let y = x;
  if (up === 2) {
    const cols = tf.reshape(tf.concat([tf.reshape(y, [b, h, w, 1, ch]), tf.zeros([b, h, w, 1, ch])], 3), [
      b,
      h,
      1,
      2 * w,
      ch,
    ]);
    y = tf.reshape(tf.concat([cols, tf.zeros([b, h, 1, 2 * w, ch])], 2), [b, 2 * h, 2 * w, ch]);
  }
  y = tf.pad(y, [[0, 0], pad, pad, [0, 0]]);
  const [kh, kw] = kernel.shape;
  const filter = tf.tile(tf.reshape(tf.reverse(kernel, [0, 1]), [kh, kw, 1, 1]), [1, 1, ch, 1]) as tf.Tensor4D;
  return tf.depthwiseConv2d(y, filter, 1, 'valid');
}

/** make_kernel([1, 3, 3, 1]) · gain: the outer product normalised to sum 1, times the upsampling gain. */
function blurKernelValues(gain: number): Float32Array {
  const k = [1, 3, 3, 1];
  return Float32Array.from(k.flatMap((a) => k.map((b) => (a * b * gain) / 64)));
}

function blurKernel(gain: number): tf.Tensor2D {
  return tf.tensor2d(blurKernelValues(gain), [4, 4]);
}

/** The per-sample style s [B, in] of a modulated convolution (EqualLinear, bias init 1). */
function modulation(p: Params, name: string, w: tf.Tensor2D, inC: number): tf.Tensor2D {
  return equalLinear(p, `${name}.modulation`, w, inC, 1, { init: 1, activate: false });
}

interface ModConv {
  outC: number;
  k: 1 | 3;
  demodulate: boolean;
  upsample: boolean;
}

/** ModulatedConv2d (fused=True in the reference) as x·s → conv → ·d. */
function modulatedConv(p: Params, name: string, x: tf.Tensor4D, w: tf.Tensor2D, o: ModConv): tf.Tensor4D {
  const [b, h, wd, inC] = x.shape;
  const weight = p.get(`${name}.weight`, [o.k, o.k, inC, o.outC], { kind: 'normal', std: 1 });
  const kernel = tf.mul(weight, 1 / Math.sqrt(inC * o.k * o.k)) as tf.Tensor4D;
  const s = modulation(p, name, w, inC);
  const xs = tf.mul(x, tf.reshape(s, [b, 1, 1, inC])) as tf.Tensor4D;
  let out: tf.Tensor4D;
  if (o.upsample) {
    // conv_transpose2d(stride 2, no padding) → [2H+1, 2W+1], then the blur with the factor's gain.
    const t = tf.conv2dTranspose(
      xs,
      tf.transpose(kernel, [0, 1, 3, 2]) as tf.Tensor4D,
      [b, 2 * h + 1, 2 * wd + 1, o.outC],
      2,
      'valid',
    );
    out = upfirdn2d(t, blurKernel(4), 1, [1, 1]);
  } else out = tf.conv2d(xs, kernel, 1, 'same');
  if (!o.demodulate) return out;
  // d[b, o] = 1/√(Σ_{i,kh,kw} (k·s_i)² + 1e-8) = 1/√(s² · Σ_hw k² + 1e-8)
  const kSq = tf.sum(tf.reshape(tf.square(kernel), [o.k * o.k, inC, o.outC]), 0) as tf.Tensor2D;
  const d = tf.rsqrt(tf.add(tf.matMul(tf.square(s), kSq), 1e-8));
  return tf.mul(out, tf.reshape(d, [b, 1, 1, o.outC])) as tf.Tensor4D;
}

/** StyledConv: modulated conv, + noise·weight (the fixed buffer), FusedLeakyReLU with bias. */
function styledConv(
  p: Params,
  name: string,
  x: tf.Tensor4D,
  w: tf.Tensor2D,
  outC: number,
  upsample: boolean,
  noiseIndex: number,
): tf.Tensor4D {
  const y = modulatedConv(p, `${name}.conv`, x, w, { outC, k: 3, demodulate: true, upsample });
  const r = y.shape[1];
  const noise = p.get(`noises.noise_${noiseIndex}`, [1, r, r, 1], { kind: 'normal', std: 1 });
  const strength = p.get(`${name}.noise.weight`, [1], { kind: 'zeros' });
  const withNoise = tf.add(y, tf.mul(noise, strength));
  const bias = p.get(`${name}.activate.bias`, [outC], { kind: 'zeros' });
  return tf.mul(tf.leakyRelu(tf.add(withNoise, bias), 0.2), LRELU_GAIN) as tf.Tensor4D;
}

/** ToRGB: 1×1 modulated conv without demodulation, + bias, + the upsampled skip. */
function toRgb(p: Params, name: string, x: tf.Tensor4D, w: tf.Tensor2D, skip: tf.Tensor4D | null): tf.Tensor4D {
  const y = tf.add(
    modulatedConv(p, `${name}.conv`, x, w, { outC: 3, k: 1, demodulate: false, upsample: false }),
    p.get(`${name}.bias`, [1, 1, 1, 3], { kind: 'zeros' }),
  ) as tf.Tensor4D;
  if (!skip) return y;
  // Upsample: kernel × factor², pad (2, 1) for the 4-tap kernel at factor 2.
  return tf.add(y, upfirdn2d(skip, blurKernel(4), 2, [2, 1])) as tf.Tensor4D;
}

/** G(W+): W+ [B, n_latent, dim] → images NHWC [B, size, size, 3] in about [-1, 1]. */
export function synthesis(p: Params, c: StyleGan2Config, wplus: tf.Tensor3D): tf.Tensor4D {
  const [b, n, dim] = wplus.shape;
  const levels = nLatent(c);
  if (n !== levels || dim !== c.styleDim)
    throw new UserError(`W+ is [${n}, ${dim}]; this generator takes [${levels}, ${c.styleDim}]`);
  const level = (i: number) => tf.reshape(tf.slice(wplus, [0, i, 0], [b, 1, dim]), [b, dim]) as tf.Tensor2D;
  const c4 = channelsAt(c, 4);
  const input = p.get('input.input', [1, 4, 4, c4], { kind: 'normal', std: 1 });
  let x = tf.tile(input, [b, 1, 1, 1]) as tf.Tensor4D;
  x = styledConv(p, 'conv1', x, level(0), c4, false, 0);
  let skip = toRgb(p, 'to_rgb1', x, level(1), null);
  // One tidy per resolution: only x and skip outlive a level. Without it a 1024² forward holds every
  // activation until the caller's tidy ends (> 5 GB for config-f at batch 1: the seeded world's
  // creation ran wasm out of memory). Under a gradient the tape keeps its own copies of what it needs.
  for (let r = 3, i = 1; r <= logSize(c); r++, i += 2) {
    const outC = channelsAt(c, 2 ** r);
    const j = (r - 3) * 2;
    [x, skip] = tf.tidy(() => {
      const up = styledConv(p, `convs.${j}`, x, level(i), outC, true, j + 1);
      const y = styledConv(p, `convs.${j + 1}`, up, level(i + 1), outC, false, j + 2);
      return [y, toRgb(p, `to_rgbs.${r - 3}`, y, level(i + 2), skip)];
    });
  }
  return skip;
}

/**
 * rosinality's g_ema as converted by tools/convert_stylegan2.py, loaded strictly; `latent_avg`
 * when the file has it.
 */
export interface StyleGan2 {
  config: StyleGan2Config;
  params: Params;
  /** The checkpoint's average w (truncation centre), when it ships one. */
  latentAvg: tf.Tensor1D | null;
  dispose(): void;
}

/** A forward through every parameter (mapping + synthesis at batch 1) for strict loading and for creation. */
function touchAll(p: Params, c: StyleGan2Config, withAvg: boolean): void {
  const w = mapping(p, c, tf.zeros([1, c.styleDim]));
  synthesis(p, c, tf.tile(tf.reshape(w, [1, 1, c.styleDim]), [1, nLatent(c), 1]) as tf.Tensor3D);
  if (withAvg) p.get('latent_avg', [c.styleDim], { kind: 'zeros' });
}

const NCHW = (name: string) =>
  name === 'input.input' || name.startsWith('noises.') || /^to_rgbs?[0-9.]*\.bias$/.test(name);
/**
 * tools/convert_stylegan2.py's layout of a store: NCHW buffers, every kernel a batch-1 modulated
 * one [1, O, I, k, k].
 */
export const STYLEGAN2_TORCH_LAYOUT: TorchWriteOptions = { nchw: NCHW, batched: () => true };
const FIR = /^(convs\.\d+\.conv\.blur|to_rgbs\.\d+\.upsample)\.kernel$/;

/**
 * The FIR buffers (every `blur.kernel` / `upsample.kernel`) are make_kernel([1, 3, 3, 1]) in every
 * config the reference builds: checked against that here, then computed, not read.
 */
function checkFirBuffers(path: string): void {
  const src = openWeights(path);
  try {
    for (const name of src.names().filter((n) => FIR.test(n))) {
      const v = asFloat32(src.read(name));
      // Both sit after a factor-2 upsampling: the kernel carries the gain 2² = 4.
      const want = blurKernelValues(4);
      if (v.length !== 16 || v.some((x, i) => Math.abs(x - want[i]) > 1e-6))
        throw new UserError(`${path}: ${name} is not the [1, 3, 3, 1] FIR kernel this generator implements`);
    }
  } finally {
    src.close();
  }
}

/**
 * A converted g_ema's architecture, read from its tensor shapes: style_dim and the mapping depth
 * from style.*, the size from the toRGB count, every resolution's channels from its convolutions.
 * lr_mlp is not stored in a checkpoint: rosinality's (and NVIDIA's) 0.01.
 */
function styleGan2ConfigOf(path: string): StyleGan2Config {
  const src = openWeights(path);
  try {
    const names = src.names();
    const shape = (n: string) => {
      if (!names.includes(n))
        throw new UserError(`${path}: no tensor ${n} (not a StyleGAN2 g_ema converted by tools/convert_stylegan2.py)`);
      return src.info(n).shape;
    };
    const nMlp = names.filter((n) => /^style\.\d+\.weight$/.test(n)).length;
    const rgbs = names.filter((n) => /^to_rgbs\.\d+\.bias$/.test(n)).length;
    const channels: Record<number, number> = { 4: shape('conv1.conv.weight')[1] };
    for (let r = 3; r < rgbs + 3; r++) channels[2 ** r] = shape(`convs.${(r - 3) * 2}.conv.weight`)[1];
    return {
      size: 4 * 2 ** rgbs,
      styleDim: shape('style.1.weight')[1],
      nMlp,
      channelMultiplier: 2,
      lrMlp: 0.01,
      channels,
    };
  } finally {
    src.close();
  }
}

export function loadStyleGan2(path: string, config: StyleGan2Config = styleGan2ConfigOf(path)): StyleGan2 {
  checkFirBuffers(path);
  const params = loadVerified(path, (q) => touchAll(q, config, q.vars.has('latent_avg')), {
    nchw: NCHW,
    ignore: (n) => FIR.test(n),
  });
  const latentAvg = (params.vars.get('latent_avg') ?? null) as tf.Tensor1D | null;
  return { config, params, latentAvg, dispose: () => params.dispose() };
}

/** The checkpoint's latent_avg, or the mean of the mapping over 4096 seeded z (rosinality's mean_latent). */
export function averageLatent(g: StyleGan2, seed: number): tf.Tensor1D {
  return g.latentAvg
    ? tf.clone(g.latentAvg)
    : tf.tidy(
        () =>
          tf.mean(
            mapping(g.params, g.config, tf.randomNormal([4096, g.config.styleDim], 0, 1, 'float32', seed)),
            0,
          ) as tf.Tensor1D,
      );
}

/** The architecture with seeded random weights (no file); no latent_avg (averageLatent computes one). */
export function randomStyleGan2(config: StyleGan2Config, seed: number): StyleGan2 {
  const params = Params.created(seed, (p) => touchAll(p, config, false));
  return { config, params, latentAvg: null, dispose: () => params.dispose() };
}
