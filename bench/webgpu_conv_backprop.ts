/**
 * Conv2DBackpropInput/Filter on webgpu, timed alone at the bench U-Net's 3×3 shapes (channels
 * 32/64/128 at 32²/16²/8², and a stride-2 downsampling), for bench/webgpu_counts.ts:
 *   ours           kernels/webgpu_conv_backprop.ts (tiled implicit GEMMs);
 *   tfjs naive     tfjs-backend-webgpu 4.22's defaults (one thread per output element);
 *   tfjs mm        dx only: tfjs's own matmul program, WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE=false;
 *   forward conv   stride 1 only: the wasm kernels' composite (conv2d_backprop_{input,filter}.ts) over
 *                  webgpu's forward Conv2D (a tiled matmul program), dx = conv(dy, flipped wᵀ) and
 *                  dW = conv(xᵀ, dyᵀ)ᵀ.
 * Median wall ms per call, the result read back. On a software adapter (lavapipe) this is CPU time
 * on the host's cores: a rough guide to the work done, not a GPU's speed.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, NamedAttrMap, NamedTensorMap, TensorInfo } from '@tensorflow/tfjs-core';
import { makeConv2DBackpropFilter } from '../src/backend/kernels/conv2d_backprop_filter.js';
import { makeConv2DBackpropInput } from '../src/backend/kernels/conv2d_backprop_input.js';
import { setConvBackprop } from '../src/backend/kernels/webgpu_conv_backprop.js';
import { med, timeIt } from './common.js';

const REPS = 5;

/** A composite that declines the call: never for the NHWC calls timed here. */
const declined: KernelFunc = () => {
  throw new Error('the forward-conv composite declined an NHWC call');
};

/** The wasm kernels' forward-conv composite (conv2d_backprop_*.ts) as one call on the active backend. */
const composite =
  (make: (backendName: string, fallback: KernelFunc) => KernelFunc, inputs: NamedTensorMap, attrs: NamedAttrMap) =>
  () => {
    const info = make(tf.getBackend(), declined)({ inputs, backend: tf.backend(), attrs }) as TensorInfo;
    return tf.engine().makeTensorFromTensorInfo(info);
  };

export interface ConvTime {
  op: 'Conv2DBackpropInput' | 'Conv2DBackpropFilter';
  shape: string;
  /** Median ms per call by implementation (absent where it does not apply). */
  ms: Record<string, number>;
}

const time = async (f: () => tf.Tensor) =>
  med(
    await timeIt(
      async () => {
        const r = f();
        await r.data();
        r.dispose();
      },
      REPS,
      1,
    ),
  );

/** `f` timed with our kernels and with tfjs's (naive; for dx also its matmul program). */
async function byKernels(f: () => tf.Tensor, input: boolean): Promise<Record<string, number>> {
  const ms: Record<string, number> = { ours: await time(f) };
  setConvBackprop('tfjs');
  try {
    ms.tfjs_naive = await time(f);
    if (input) {
      tf.env().set('WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE', false);
      ms.tfjs_mm = await time(f);
    }
  } finally {
    tf.env().set('WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE', true);
    setConvBackprop('ours');
  }
  return ms;
}

/** Both backprops of a 3×3 'same' conv of x [b, h, h, c] → c channels at `stride`. */
async function shapeTimes(b: number, h: number, c: number, stride: number): Promise<ConvTime[]> {
  const x = tf.randomNormal([b, h, h, c]) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, c, c]) as tf.Tensor4D;
  const dy = tf.randomNormal([b, h / stride, h / stride, c]) as tf.Tensor4D;
  const shape = `x[${b},${h},${h},${c}] k3 s${stride}`;
  try {
    const dx = () => tf.conv2dTranspose(dy, w, [b, h, h, c], stride, 'same');
    const attrs = { strides: [stride, stride], pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, c, c] };
    const dw = () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs) as tf.Tensor;
    const input = await byKernels(dx, true);
    const filter = await byKernels(dw, false);
    if (stride === 1) {
      input.forward_conv = await time(
        composite(makeConv2DBackpropInput, { dy, filter: w }, { ...attrs, inputShape: [b, h, h, c] }),
      );
      filter.forward_conv = await time(composite(makeConv2DBackpropFilter, { x, dy }, attrs));
    }
    return [
      { op: 'Conv2DBackpropInput', shape, ms: input },
      { op: 'Conv2DBackpropFilter', shape, ms: filter },
    ];
  } finally {
    tf.dispose([x, w, dy]);
  }
}

/** Every shape's times at batch `b`, printed as they come. */
export async function convBackpropTimes(b: number): Promise<ConvTime[]> {
  const out: ConvTime[] = [];
  for (const [h, c, s] of [
    [32, 32, 1],
    [16, 64, 1],
    [8, 128, 1],
    [32, 32, 2],
  ]) {
    for (const row of await shapeTimes(b, h, c, s)) {
      out.push(row);
      const cols = Object.entries(row.ms).map(([k, v]) => `${k} ${v.toFixed(1)} ms`);
      console.log(`${row.op.padEnd(21)} ${row.shape.padEnd(24)} ${cols.join('  ')}`);
    }
  }
  return out;
}
