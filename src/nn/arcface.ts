/**
 * ArcFace IR-SE50 (Deng et al. 2019; the ResNet-50 "IR" units with squeeze-and-excitation), the
 * identity network of the model_ir_se50.pth that StyleCLIP and e4e load for their ID loss, under
 * that file's parameter names (TreB1eN/InsightFace_Pytorch's Backbone(50, 0.6, 'ir_se')): convert
 * it with tools/convert_ir_se50.py. Inference only (BatchNorm with running statistics, dropout off),
 * differentiable w.r.t. the input: SDD's identity loss backpropagates through it.
 *
 * Input NHWC in [-1, 1] at 112²; output unit-norm 512-d embeddings. `idEmbed` applies the ID loss's
 * own preprocessing to a generator image: average-pool to 256², crop the face region
 * [35:223, 32:220], average-pool to 112² (PyTorch's AdaptiveAvgPool2d bins, exactly).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Params } from './params.js';
import { torchLinear } from './attention.js';
import { loadVerified } from './torch_weights.js';

const BN_EPS = 1e-5;
/** Units per stage and their widths; the first unit of each stage has stride 2. */
export type IrStages = Array<[number, number]>;

/** IR-50's stages (model_ir_se50.pth). */
export const IR_SE50_STAGES: IrStages = [
  [3, 64],
  [4, 128],
  [14, 256],
  [3, 512],
];

function batchNorm(p: Params, n: string, x: tf.Tensor): tf.Tensor {
  const c = x.shape[x.shape.length - 1];
  const w = p.get(`${n}.weight`, [c], { kind: 'ones' });
  const b = p.get(`${n}.bias`, [c], { kind: 'zeros' });
  const mean = p.get(`${n}.running_mean`, [c], { kind: 'zeros' });
  const variance = p.get(`${n}.running_var`, [c], { kind: 'ones' });
  // Scale and shift depend on the weights alone: made once per store (Params.memo), not per forward.
  const [scale, shift] = p.memo(`${n}.bn-fold`, [w, b, mean, variance], () => {
    const s = tf.mul(w, tf.rsqrt(tf.add(variance, BN_EPS)));
    return [s, tf.sub(b, tf.mul(mean, s))];
  });
  return tf.add(tf.mul(x, scale), shift);
}

/** Conv without bias, PyTorch padding (k − 1)/2 on both sides at any stride. */
function conv(p: Params, n: string, x: tf.Tensor4D, cout: number, k: number, stride: number): tf.Tensor4D {
  const cin = x.shape[3];
  const w = p.get(`${n}.weight`, [k, k, cin, cout], {
    kind: 'normal',
    std: Math.sqrt(2 / (k * k * cin)),
  }) as tf.Tensor4D;
  const pad = (k - 1) >> 1;
  return tf.conv2d(
    x,
    w,
    stride,
    pad === 0
      ? 'valid'
      : [
          [0, 0],
          [pad, pad],
          [pad, pad],
          [0, 0],
        ],
  );
}

function prelu(p: Params, n: string, x: tf.Tensor4D): tf.Tensor4D {
  return tf.prelu(x, p.get(`${n}.weight`, [x.shape[3]], { kind: 'ones' }) as tf.Tensor) as tf.Tensor4D;
}

/** Squeeze-and-excitation: channel gates from the global average, through a 16× bottleneck. */
function se(p: Params, n: string, x: tf.Tensor4D): tf.Tensor4D {
  const c = x.shape[3];
  const s = tf.mean(x, [1, 2], true) as tf.Tensor4D;
  const gate = tf.sigmoid(conv(p, `${n}.fc2`, tf.relu(conv(p, `${n}.fc1`, s, c / 16, 1, 1)), c, 1, 1));
  return tf.mul(x, gate);
}

function unit(p: Params, n: string, x: tf.Tensor4D, depth: number, stride: number): tf.Tensor4D {
  // The shortcut: MaxPool2d(1, stride) (plain subsampling) at equal width, else a strided 1×1 conv + BN.
  const shortcut =
    x.shape[3] === depth
      ? tf.maxPool(x, 1, stride, 'valid')
      : (batchNorm(p, `${n}.shortcut_layer.1`, conv(p, `${n}.shortcut_layer.0`, x, depth, 1, stride)) as tf.Tensor4D);
  let r = batchNorm(p, `${n}.res_layer.0`, x) as tf.Tensor4D;
  r = prelu(p, `${n}.res_layer.2`, conv(p, `${n}.res_layer.1`, r, depth, 3, 1));
  r = batchNorm(p, `${n}.res_layer.4`, conv(p, `${n}.res_layer.3`, r, depth, 3, stride)) as tf.Tensor4D;
  return tf.add(se(p, `${n}.res_layer.5`, r), shortcut);
}

/**
 * Unit-norm identity embeddings [B, 512] of faces NHWC [B, 112, 112, 3] in [-1, 1]. `stages`
 * other than IR-50's make a narrower network of the same units (paper-random-tiny's stand-in).
 */
export function irSe50(p: Params, faces: tf.Tensor4D, stages: IrStages = IR_SE50_STAGES): tf.Tensor2D {
  let x = prelu(
    p,
    'input_layer.2',
    batchNorm(p, 'input_layer.1', conv(p, 'input_layer.0', faces, stages[0][1], 3, 1)) as tf.Tensor4D,
  );
  let i = 0;
  for (const [units, depth] of stages) {
    for (let u = 0; u < units; u++) x = unit(p, `body.${i++}`, x, depth, u === 0 ? 2 : 1);
  }
  x = batchNorm(p, 'output_layer.0', x) as tf.Tensor4D;
  // PyTorch flattens [B, C, H, W] channel-major: the linear layer's columns are in that order.
  const flat = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [x.shape[0], -1]);
  const e = batchNorm(p, 'output_layer.4', torchLinear(p, 'output_layer.3', flat, 512));
  return tf.div(e, tf.norm(e, 2, 1, true)) as tf.Tensor2D;
}

/** PyTorch's AdaptiveAvgPool bins as a matrix [out, in]: row i averages in[⌊i·n/m⌋ .. ⌈(i+1)·n/m⌉). */
export function adaptivePoolMatrix(n: number, m: number): Float32Array {
  const a = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    const s = Math.floor((i * n) / m);
    const e = Math.ceil(((i + 1) * n) / m);
    for (let j = s; j < e; j++) a[i * n + j] = 1 / (e - s);
  }
  return a;
}

/** AdaptiveAvgPool2d to m × m of NHWC images, as two matrix products (differentiable). */
function adaptiveAvgPool(x: tf.Tensor4D, m: number): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const rows = tf.tensor2d(adaptivePoolMatrix(h, m), [m, h]);
  const cols = tf.tensor2d(adaptivePoolMatrix(w, m), [m, w]);
  // [B, H, W, C] → [B·C, H, W]: pool rows, then columns.
  const planes = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [b * c, h, w]);
  const byRows = tf.matMul(tf.broadcastTo(rows, [b * c, m, h]), planes);
  const pooled = tf.matMul(byRows, tf.broadcastTo(cols, [b * c, m, w]), false, true);
  return tf.transpose(tf.reshape(pooled, [b, c, m, m]), [0, 2, 3, 1]);
}

/** The ID loss's embedding of generator images [B, S, S, 3] in [-1, 1] (e4e / StyleCLIP IDLoss.extract_feats). */
export function idEmbed(p: Params, images: tf.Tensor4D, stages: IrStages = IR_SE50_STAGES): tf.Tensor2D {
  const x = images.shape[1] === 256 ? images : adaptiveAvgPool(images, 256);
  const face = tf.slice(x, [0, 35, 32, 0], [-1, 188, 188, -1]);
  return irSe50(p, adaptiveAvgPool(face, 112), stages);
}

const touchIrSe50 = (q: Params, stages: IrStages = IR_SE50_STAGES) => irSe50(q, tf.zeros([1, 112, 112, 3]), stages);

/** Weights converted by tools/convert_ir_se50.py, loaded strictly. */
export function loadIrSe50(path: string): Params {
  return loadVerified(path, (q) => touchIrSe50(q));
}

/** IR-SE50 (or the narrower `stages`) with seeded random weights (no file). */
export function randomIrSe50(seed: number, stages: IrStages = IR_SE50_STAGES): Params {
  return Params.created(seed, (q) => touchIrSe50(q, stages));
}
