/**
 * Building blocks shared by the toyfaces models and the benchmarks. NHWC throughout. Each block
 * takes the Params store and a name prefix; shapes match PyTorch's modules of the same name so
 * bench/unet_torch.py builds the same network.
 */
import * as tf from '@tensorflow/tfjs-core';
import { customGradOp } from './custom_grad.js';
import type { Params } from './params.js';
import { groupNormFused, hasGroupNormKernel } from '../backend/kernels/group_norm.js';
import { groupNormSiluFused, webgpuFusions } from '../backend/kernels/group_norm_silu.js';
import { siluFused } from '../backend/kernels/silu.js';

const GROUP_NORM_EPS = 1e-5;

export function conv2d(p: Params, name: string, x: tf.Tensor4D, cout: number, k = 3, stride = 1): tf.Tensor4D {
  const cin = x.shape[3];
  // He-style fan-in init, as PyTorch's default is close to it for these widths.
  const w = p.get(`${name}.weight`, [k, k, cin, cout], { kind: 'normal', std: Math.sqrt(1 / (k * k * cin)) });
  const b = p.get(`${name}.bias`, [cout], { kind: 'zeros' });
  const pad =
    k === 1
      ? 'valid'
      : stride === 1
        ? 'same'
        : ([
            [0, 0],
            [(k - 1) >> 1, k >> 1],
            [(k - 1) >> 1, k >> 1],
            [0, 0],
          ] as const);
  // Explicit symmetric padding for strided convs: TF's 'same' pads bottom/right only, PyTorch pads both.
  const padding = pad as 'same' | 'valid';
  // On webgpu the bias is added in the conv's output stage (one dispatch fewer); elsewhere the ops as before.
  if (webgpuFusions(tf.getBackend())) {
    return tf.fused.conv2d({ x, filter: w as tf.Tensor4D, strides: stride, pad: padding, bias: b });
  }
  return tf.add(tf.conv2d(x, w as tf.Tensor4D, stride, padding, 'NHWC', 1), b) as tf.Tensor4D;
}

export function linear(p: Params, name: string, x: tf.Tensor, cout: number): tf.Tensor {
  const cin = x.shape[x.shape.length - 1];
  const w = p.get(`${name}.weight`, [cin, cout], { kind: 'normal', std: Math.sqrt(1 / cin) });
  const b = p.get(`${name}.bias`, [cout], { kind: 'zeros' });
  const flat = tf.reshape(x, [-1, cin]);
  const y = webgpuFusions(tf.getBackend())
    ? tf.fused.matMul({ a: flat, b: w, bias: b })
    : tf.add(tf.matMul(flat, w), b);
  return tf.reshape(y, [...x.shape.slice(0, -1), cout]);
}

/** A GroupNorm (or GroupNorm+SiLU) on NHWC x with per-channel γ and β; eps defaults to 1e-5. */
export type GroupNormFn = (
  x: tf.Tensor4D,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  groups: number,
  eps?: number,
) => tf.Tensor4D;

/** The layer form of op: γ and β are the parameters name.weight (ones) and name.bias (zeros). */
function layerOf(op: GroupNormFn) {
  return (p: Params, name: string, x: tf.Tensor4D, groups: number, eps = GROUP_NORM_EPS): tf.Tensor4D => {
    const c = x.shape[3];
    const gamma = p.get(`${name}.weight`, [c], { kind: 'ones' });
    return op(x, gamma, p.get(`${name}.bias`, [c], { kind: 'zeros' }), groups, eps);
  };
}

/**
 * GroupNorm over (H, W, C/G) per group, eps 1e-5, with per-channel affine (PyTorch semantics).
 * The backward pass is written out (dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) per group): about
 * half the kernels autodiff of the forward ops would issue, a measurable share of a wasm step.
 */
export const groupNorm = layerOf((...a) => groupNormOp(...a));

/** silu(groupNorm(…)): one kernel forward and four backward on webgpu (backend/kernels/group_norm_silu.ts). */
export const groupNormSilu = layerOf((...a) => groupNormSiluOp(...a));

/** Elsewhere than webgpu, exactly the unfused ops: silu(groupNormOp(…)). */
export const groupNormSiluOp: GroupNormFn = (x, gamma, beta, groups, eps = GROUP_NORM_EPS) => {
  const backend = tf.getBackend();
  if (!webgpuFusions(backend)) return silu(groupNormOp(x, gamma, beta, groups, eps));
  return groupNormSiluFused(x, gamma, beta, groups, eps) as tf.Tensor4D;
};

export const groupNormOp: GroupNormFn = (x, gamma, beta, groups, eps = GROUP_NORM_EPS) =>
  // wasm has a fused kernel (backend/kernels/group_norm.ts); other backends run the composite.
  hasGroupNormKernel(tf.getBackend())
    ? (groupNormFused(x, gamma, beta, groups, eps) as tf.Tensor4D)
    : groupNormComposite(x, gamma, beta, groups, eps);

/** GroupNorm from tfjs ops with its gradient written out (fewer kernels than autodiff). */
export const groupNormComposite: GroupNormFn = (x, gamma, beta, groups, eps = GROUP_NORM_EPS) => {
  const [b, h, w, c] = x.shape;
  const gshape = [b, h * w, groups, c / groups];
  const op = customGradOp((xi: tf.Tensor, g: tf.Tensor, bt: tf.Tensor, save: tf.GradSaveFunc) => {
    const xg = tf.reshape(xi, gshape);
    const { mean, variance } = tf.moments(xg, [1, 3], true);
    const rstd = tf.rsqrt(tf.add(variance, eps));
    const xhat = tf.mul(tf.sub(xg, mean), rstd);
    const xhat4 = tf.reshape(xhat, [b, h, w, c]);
    save([xhat4, rstd, g]);
    return {
      value: tf.add(tf.mul(xhat4, g), bt),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, rs, gm] = saved;
        const dBeta = tf.sum(dy, [0, 1, 2]);
        const dGamma = tf.sum(tf.mul(dy, xh), [0, 1, 2]);
        const dxhat = tf.reshape(tf.mul(dy, gm), gshape);
        const xhg = tf.reshape(xh, gshape);
        const m1 = tf.mean(dxhat, [1, 3], true);
        const m2 = tf.mean(tf.mul(dxhat, xhg), [1, 3], true);
        const dx = tf.mul(rs, tf.sub(tf.sub(dxhat, m1), tf.mul(xhg, m2)));
        return [tf.reshape(dx, [b, h, w, c]), dGamma, dBeta];
      },
    };
  });
  return op(x, gamma, beta) as tf.Tensor4D;
};

/** The same normalisation through autodiff of plain ops: the reference for groupNormOp's gradient. */
export function groupNormReference(x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, groups: number): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const g = tf.reshape(x, [b, h * w, groups, c / groups]);
  const { mean, variance } = tf.moments(g, [1, 3], true);
  const normed = tf.reshape(tf.mul(tf.sub(g, mean), tf.rsqrt(tf.add(variance, GROUP_NORM_EPS))), [b, h, w, c]);
  return tf.add(tf.mul(normed, gamma), beta) as tf.Tensor4D;
}

/**
 * SiLU x·σ(x) with its derivative written out, σ(x)·(1 + x·(1 − σ(x))): fewer kernels than
 * autodiff through the product and the sigmoid.
 */
export const silu = <T extends tf.Tensor>(x: T): T => {
  const backend = tf.getBackend();
  if (!webgpuFusions(backend)) return siluOp(x) as T;
  // On webgpu one kernel each way (backend/kernels/silu.ts), the same arithmetic.
  return siluFused(x) as T;
};

const siluOp = customGradOp((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const s = tf.sigmoid(x);
  save([x, s]);
  return {
    value: tf.mul(x, s),
    gradFunc: (dy: tf.Tensor, [xs, sg]: tf.Tensor[]) => tf.mul(dy, tf.mul(sg, tf.add(1, tf.mul(xs, tf.sub(1, sg))))),
  };
});

/** x·σ(x) through autodiff: the reference for silu's gradient. */
export function siluReference<T extends tf.Tensor>(x: T): T {
  return tf.mul(x, tf.sigmoid(x)) as T;
}

export function resBlock(p: Params, name: string, x: tf.Tensor4D, groups: number): tf.Tensor4D {
  const c = x.shape[3];
  let h = conv2d(p, `${name}.conv1`, groupNormSilu(p, `${name}.norm1`, x, groups), c);
  h = conv2d(p, `${name}.conv2`, groupNormSilu(p, `${name}.norm2`, h, groups), c);
  return tf.add(x, h) as tf.Tensor4D;
}

/** Single-head self-attention over the H·W positions, with a residual (SD's AttnBlock). */
export function attention(p: Params, name: string, x: tf.Tensor4D, groups: number): tf.Tensor4D {
  const [b, hh, ww, c] = x.shape;
  const n = tf.reshape(groupNorm(p, `${name}.norm`, x, groups), [b, hh * ww, c]);
  const q = linear(p, `${name}.q`, n, c);
  const k = linear(p, `${name}.k`, n, c);
  const v = linear(p, `${name}.v`, n, c);
  const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(c)));
  const o = tf.reshape(linear(p, `${name}.proj`, tf.matMul(att, v), c), [b, hh, ww, c]);
  return tf.add(x, o) as tf.Tensor4D;
}

export function upsample2x(x: tf.Tensor4D): tf.Tensor4D {
  return tf.image.resizeNearestNeighbor(x, [x.shape[1] * 2, x.shape[2] * 2]);
}

/** LayerNorm over the last axis, per-feature affine (PyTorch semantics; eps as PyTorch's default). */
export function layerNorm(p: Params, name: string, x: tf.Tensor, eps = 1e-5): tf.Tensor {
  const d = x.shape[x.shape.length - 1];
  const gamma = p.get(`${name}.weight`, [d], { kind: 'ones' });
  const beta = p.get(`${name}.bias`, [d], { kind: 'zeros' });
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
}

/**
 * Multi-head attention of queries x [B, N, D] over a context [B, M, Dc] (self-attention when
 * context is x). keyMask [B, M] (1 = attend) hides padding tokens.
 */
export function multiHeadAttention(
  p: Params,
  name: string,
  x: tf.Tensor,
  context: tf.Tensor,
  heads: number,
  keyMask?: tf.Tensor,
): tf.Tensor {
  const [b, n, d] = x.shape as [number, number, number];
  const m = context.shape[1] as number;
  const dh = d / heads;
  const split = (t: tf.Tensor, len: number) => tf.transpose(tf.reshape(t, [b, len, heads, dh]), [0, 2, 1, 3]);
  const q = split(linear(p, `${name}.q`, x, d), n);
  const k = split(linear(p, `${name}.k`, context, d), m);
  const v = split(linear(p, `${name}.v`, context, d), m);
  let logits = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh));
  if (keyMask) logits = tf.add(logits, tf.reshape(tf.mul(tf.sub(1, keyMask), -1e9), [b, 1, 1, m]));
  const o = tf.reshape(tf.transpose(tf.matMul(tf.softmax(logits), v), [0, 2, 1, 3]), [b, n, d]);
  return linear(p, `${name}.out`, o, d);
}
