/**
 * The Inception-v3 of FID as pytorch-fid computes it (InceptionV3 with use_fid_inception=True, up
 * to the final average pool): torchvision's Inception3 with pytorch-fid's patched blocks: average
 * pools in the A, C and first E blocks ignore the padding (TensorFlow's behaviour), and the last E
 * block max-pools. Written from its published architecture; parameter names are the published
 * file's (torchvision's), so pytorch-fid's weights load after tools/convert_pytorch_fid_inception.py.
 *
 * Every BasicConv2d is conv (no bias) → BatchNorm (eps 1e-3, running statistics) → ReLU; the
 * BatchNorm is folded into the kernel and a bias, so each block is one fused conv + ReLU.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Params } from './params.js';

const BN_EPS = 1e-3;

type Kernel = number | [number, number];
type Pad = 'same' | 'valid';

function basicConv(
  p: Params,
  name: string,
  x: tf.Tensor4D,
  cout: number,
  k: Kernel,
  stride = 1,
  pad: Pad = 'valid',
): tf.Tensor4D {
  const [kh, kw] = typeof k === 'number' ? [k, k] : k;
  const cin = x.shape[3];
  const w = p.get(`${name}.conv.weight`, [kh, kw, cin, cout], { kind: 'normal', std: Math.sqrt(2 / (kh * kw * cin)) });
  const gamma = p.get(`${name}.bn.weight`, [cout], { kind: 'ones' });
  const beta = p.get(`${name}.bn.bias`, [cout], { kind: 'zeros' });
  const mean = p.get(`${name}.bn.running_mean`, [cout], { kind: 'zeros' });
  const variance = p.get(`${name}.bn.running_var`, [cout], { kind: 'ones' });
  // The fold depends on the weights alone: made once per store (Params.memo), not per forward.
  const [filter, bias] = p.memo(`${name}.bn-fold`, [w, gamma, beta, mean, variance], () => {
    const scale = tf.mul(gamma, tf.rsqrt(tf.add(variance, BN_EPS)));
    return [tf.mul(w, scale) as tf.Tensor4D, tf.sub(beta, tf.mul(mean, scale))];
  });
  // Every padded conv here is stride 1 with an odd kernel: 'same' pads symmetrically, as PyTorch's padding=(k-1)/2.
  return tf.fused.conv2d({
    x,
    filter,
    strides: stride,
    pad,
    bias,
    activation: 'relu',
  });
}

/** How many of a 3-wide window centred on each of n positions lie inside (1 pixel of padding each side). */
function inside(n: number): number[] {
  return Array.from({ length: n }, (_, i) => 3 - (i === 0 ? 1 : 0) - (i === n - 1 ? 1 : 0));
}

/**
 * 3×3 stride-1 average pool that, like TensorFlow and unlike PyTorch's default, averages only the
 * real pixels. The zero padding is explicit and the pool 'valid', so every backend gives the
 * window sum / 9; the border rescale to sum / count is a constant map.
 */
function avgPoolNoPad(x: tf.Tensor4D): tf.Tensor4D {
  const [, h, w] = x.shape;
  const padded = tf.pad(x, [
    [0, 0],
    [1, 1],
    [1, 1],
    [0, 0],
  ]);
  const rows = inside(h);
  const cols = inside(w);
  const rescale = tf.tensor4d(
    rows.flatMap((a) => cols.map((b) => 9 / (a * b))),
    [1, h, w, 1],
  );
  return tf.mul(tf.avgPool(padded, 3, 1, 'valid'), rescale);
}

function maxPool3(x: tf.Tensor4D, stride: number): tf.Tensor4D {
  // stride 1 pads 1 with -inf (PyTorch's max_pool2d padding=1), which 'same' does; stride 2 pads nothing.
  return tf.maxPool(x, 3, stride, stride === 1 ? 'same' : 'valid');
}

function inceptionA(p: Params, n: string, x: tf.Tensor4D, poolFeatures: number): tf.Tensor4D {
  const b1 = basicConv(p, `${n}.branch1x1`, x, 64, 1);
  const b5 = basicConv(p, `${n}.branch5x5_2`, basicConv(p, `${n}.branch5x5_1`, x, 48, 1), 64, 5, 1, 'same');
  let b3 = basicConv(p, `${n}.branch3x3dbl_1`, x, 64, 1);
  b3 = basicConv(p, `${n}.branch3x3dbl_2`, b3, 96, 3, 1, 'same');
  b3 = basicConv(p, `${n}.branch3x3dbl_3`, b3, 96, 3, 1, 'same');
  const bp = basicConv(p, `${n}.branch_pool`, avgPoolNoPad(x), poolFeatures, 1);
  return tf.concat([b1, b5, b3, bp], 3);
}

/** Mixed_6a (torchvision's InceptionB): the 35 → 17 reduction. */
function inceptionB(p: Params, n: string, x: tf.Tensor4D): tf.Tensor4D {
  const b3 = basicConv(p, `${n}.branch3x3`, x, 384, 3, 2);
  let bd = basicConv(p, `${n}.branch3x3dbl_1`, x, 64, 1);
  bd = basicConv(p, `${n}.branch3x3dbl_2`, bd, 96, 3, 1, 'same');
  bd = basicConv(p, `${n}.branch3x3dbl_3`, bd, 96, 3, 2);
  return tf.concat([b3, bd, maxPool3(x, 2)], 3);
}

function inceptionC(p: Params, n: string, x: tf.Tensor4D, c7: number): tf.Tensor4D {
  const b1 = basicConv(p, `${n}.branch1x1`, x, 192, 1);
  let b7 = basicConv(p, `${n}.branch7x7_1`, x, c7, 1);
  b7 = basicConv(p, `${n}.branch7x7_2`, b7, c7, [1, 7], 1, 'same');
  b7 = basicConv(p, `${n}.branch7x7_3`, b7, 192, [7, 1], 1, 'same');
  let bd = basicConv(p, `${n}.branch7x7dbl_1`, x, c7, 1);
  bd = basicConv(p, `${n}.branch7x7dbl_2`, bd, c7, [7, 1], 1, 'same');
  bd = basicConv(p, `${n}.branch7x7dbl_3`, bd, c7, [1, 7], 1, 'same');
  bd = basicConv(p, `${n}.branch7x7dbl_4`, bd, c7, [7, 1], 1, 'same');
  bd = basicConv(p, `${n}.branch7x7dbl_5`, bd, 192, [1, 7], 1, 'same');
  const bp = basicConv(p, `${n}.branch_pool`, avgPoolNoPad(x), 192, 1);
  return tf.concat([b1, b7, bd, bp], 3);
}

/** Mixed_7a (torchvision's InceptionD): the 17 → 8 reduction. */
function inceptionD(p: Params, n: string, x: tf.Tensor4D): tf.Tensor4D {
  const b3 = basicConv(p, `${n}.branch3x3_2`, basicConv(p, `${n}.branch3x3_1`, x, 192, 1), 320, 3, 2);
  let b7 = basicConv(p, `${n}.branch7x7x3_1`, x, 192, 1);
  b7 = basicConv(p, `${n}.branch7x7x3_2`, b7, 192, [1, 7], 1, 'same');
  b7 = basicConv(p, `${n}.branch7x7x3_3`, b7, 192, [7, 1], 1, 'same');
  b7 = basicConv(p, `${n}.branch7x7x3_4`, b7, 192, 3, 2);
  return tf.concat([b3, b7, maxPool3(x, 2)], 3);
}

/** Mixed_7b (average pool without padding) and Mixed_7c (max pool: pytorch-fid's patch of the TF graph). */
function inceptionE(p: Params, n: string, x: tf.Tensor4D, pool: 'avg' | 'max'): tf.Tensor4D {
  const b1 = basicConv(p, `${n}.branch1x1`, x, 320, 1);
  const s3 = basicConv(p, `${n}.branch3x3_1`, x, 384, 1);
  const b3 = tf.concat(
    [
      basicConv(p, `${n}.branch3x3_2a`, s3, 384, [1, 3], 1, 'same'),
      basicConv(p, `${n}.branch3x3_2b`, s3, 384, [3, 1], 1, 'same'),
    ],
    3,
  );
  let sd = basicConv(p, `${n}.branch3x3dbl_1`, x, 448, 1);
  sd = basicConv(p, `${n}.branch3x3dbl_2`, sd, 384, 3, 1, 'same');
  const bd = tf.concat(
    [
      basicConv(p, `${n}.branch3x3dbl_3a`, sd, 384, [1, 3], 1, 'same'),
      basicConv(p, `${n}.branch3x3dbl_3b`, sd, 384, [3, 1], 1, 'same'),
    ],
    3,
  );
  const bp = basicConv(p, `${n}.branch_pool`, pool === 'avg' ? avgPoolNoPad(x) : maxPool3(x, 1), 192, 1);
  return tf.concat([b1, b3, bd, bp], 3);
}

export const INCEPTION_SIZE = 299;
export const INCEPTION_DIMS = 2048;

/**
 * pool3 features [n, 2048] of images [n, 299, 299, 3] in [0, 1] (pytorch-fid scales to [-1, 1]
 * inside the model; resizing to 299 is the caller's, bilinear without align_corners).
 */
/** The network on its smallest input: reads every parameter once. */
export const touchInception = (q: Params) => inceptionPool3(q, tf.zeros([1, 75, 75, 3]));

/** pytorch-fid's Inception with seeded random weights (no file). */
export function randomInception(seed: number): Params {
  return Params.created(seed, touchInception);
}

export function inceptionPool3(p: Params, images: tf.Tensor4D): tf.Tensor2D {
  let x = tf.sub(tf.mul(images, 2), 1) as tf.Tensor4D;
  x = basicConv(p, 'Conv2d_1a_3x3', x, 32, 3, 2);
  x = basicConv(p, 'Conv2d_2a_3x3', x, 32, 3);
  x = basicConv(p, 'Conv2d_2b_3x3', x, 64, 3, 1, 'same');
  x = maxPool3(x, 2);
  x = basicConv(p, 'Conv2d_3b_1x1', x, 80, 1);
  x = basicConv(p, 'Conv2d_4a_3x3', x, 192, 3);
  x = maxPool3(x, 2);
  x = inceptionA(p, 'Mixed_5b', x, 32);
  x = inceptionA(p, 'Mixed_5c', x, 64);
  x = inceptionA(p, 'Mixed_5d', x, 64);
  x = inceptionB(p, 'Mixed_6a', x);
  x = inceptionC(p, 'Mixed_6b', x, 128);
  x = inceptionC(p, 'Mixed_6c', x, 160);
  x = inceptionC(p, 'Mixed_6d', x, 160);
  x = inceptionC(p, 'Mixed_6e', x, 192);
  x = inceptionD(p, 'Mixed_7a', x);
  x = inceptionE(p, 'Mixed_7b', x, 'avg');
  x = inceptionE(p, 'Mixed_7c', x, 'max');
  return tf.mean(x, [1, 2]) as tf.Tensor2D;
}
