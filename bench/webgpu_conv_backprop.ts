/**
 * Conv2DBackpropInput/Filter on webgpu, timed alone at the bench U-Net's 3×3 shapes (channels
 * 32/64/128 at 32²/16²/8², and a stride-2 downsampling), for bench/webgpu_counts.ts:
 *   ours           kernels/webgpu_conv_backprop.ts (tiled implicit GEMMs);
 *   tfjs naive     tfjs-backend-webgpu 4.22's defaults (one thread per output element);
 *   tfjs mm        dx only: tfjs's own matmul program, WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE=false;
 *   forward conv   stride 1 only: the composite over webgpu's forward Conv2D (a tiled matmul
 *                  program), dx = conv(dy, flipped wᵀ) and dW = conv(xᵀ, dyᵀ)ᵀ, as the wasm kernels.
 * Median wall ms per call, the result read back. On a software adapter (lavapipe) this is CPU time
 * on the host's cores: a rough guide to the work done, not a GPU's speed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { setConvBackprop } from '../src/backend/kernels/webgpu_conv_backprop.js';
import { med, timeIt } from './common.js';

const REPS = 5;

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
      const wT = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
      input.forward_conv = await time(() => tf.conv2d(dy, wT, 1, 'same'));
      wT.dispose();
      const pad: [[number, number], [number, number], [number, number], [number, number]] = [
        [0, 0],
        [1, 1],
        [1, 1],
        [0, 0],
      ];
      filter.forward_conv = await time(() =>
        tf.tidy(() => {
          const xT = tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D;
          const dyT = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
          return tf.transpose(tf.conv2d(xT, dyT, 1, pad), [1, 2, 0, 3]);
        }),
      );
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
