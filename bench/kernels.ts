/**
 * make bench-kernels: our replacement wasm kernels against what wasm would use without them,
 * on the conv/matmul shapes of the bench U-Net (batch 8):
 *   Conv2DBackpropInput   ours vs wasm's built-in;
 *   Conv2DBackpropFilter  ours vs delegating to the cpu backend (wasm has none; 2 reps, it is slow);
 *   BatchMatMul (transposed operands; batched attention shapes)  ours vs wasm's built-in;
 *   GroupNorm forward + backward: our fused kernels vs the composite of tfjs ops (nn/layers);
 *   forward Conv2D for scale.
 * Medians over repeated calls, fresh filters each call (as in training, where weights change).
 */
import * as tf from '@tensorflow/tfjs-core';
import { getKernel, registerKernel, unregisterKernel, type KernelFunc } from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.js';
import { originalKernels } from '../src/backend/kernels/register.js';
import { delegateKernel } from '../src/backend/kernels/delegate.js';
import { groupNormComposite } from '../src/nn/layers.js';
import { groupNormFused } from '../src/backend/kernels/group_norm.js';
import { argValue, med, timeIt, writeResult } from './common.js';

const N = Number(argValue('reps', '10'));
await initBackend('wasm');

/** Runs `fn` with `kernelName` on wasm temporarily swapped for `impl`. */
async function withKernel(kernelName: string, impl: KernelFunc, fn: () => Promise<number[]>): Promise<number[]> {
  const ours = getKernel(kernelName, 'wasm')!;
  unregisterKernel(kernelName, 'wasm');
  registerKernel({ kernelName, backendName: 'wasm', kernelFunc: impl, setupFunc: ours.setupFunc });
  try {
    return await fn();
  } finally {
    unregisterKernel(kernelName, 'wasm');
    registerKernel(ours);
  }
}

const time = (f: () => tf.Tensor, reps = N, warmup = 2) =>
  timeIt(
    () => {
      const r = f();
      r.dataSync();
      r.dispose();
    },
    reps,
    warmup,
  );

const rows: Array<Record<string, unknown>> = [];
function report(op: string, shape: string, oursMs: number[], otherMs: number[], other: string): void {
  const row = { op, shape, ours_ms: med(oursMs), other_ms: med(otherMs), other, speedup: med(otherMs) / med(oursMs) };
  rows.push(row);
  console.log(
    `${op.padEnd(22)} ${shape.padEnd(28)} ours ${row.ours_ms.toFixed(2).padStart(7)} ms  ${other} ${row.other_ms.toFixed(2).padStart(7)} ms  ×${row.speedup.toFixed(1)}`,
  );
}

/** Ours against the wasm kernel it replaces (registered back for the second timing). */
async function vsBuiltIn(op: string, kernelName: string, shape: string, f: () => tf.Tensor): Promise<void> {
  const builtIn = originalKernels.get(`wasm/${kernelName}`)!;
  report(op, shape, await time(f), await withKernel(kernelName, builtIn, () => time(f)), 'wasm built-in');
}

for (const [B, H, C, S] of [
  [8, 32, 32, 1],
  [8, 16, 64, 1],
  [8, 8, 128, 1],
  [8, 32, 32, 2],
]) {
  const x = tf.randomNormal([B, H, H, C]) as tf.Tensor4D;
  const oh = H / S;
  const dy = tf.randomNormal([B, oh, oh, C]) as tf.Tensor4D;
  const w = () => tf.randomNormal([3, 3, C, C]) as tf.Tensor4D;
  const shape = `x[${B},${H},${H},${C}] k3 s${S}`;
  const fwd = await time(() => tf.tidy(() => tf.conv2d(x, w(), S, 'same')));
  console.log(`${'Conv2D (forward)'.padEnd(22)} ${shape.padEnd(28)} ${med(fwd).toFixed(2).padStart(12)} ms`);
  const bi = () => tf.tidy(() => tf.conv2dTranspose(dy, w(), [B, H, H, C], S, 'same'));
  await vsBuiltIn('Conv2DBackpropInput', 'Conv2DBackpropInput', shape, bi);
  const attrs = { strides: [S, S], pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, C, C] };
  const bf = () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs) as tf.Tensor;
  report(
    'Conv2DBackpropFilter',
    shape,
    await time(bf),
    await withKernel('Conv2DBackpropFilter', delegateKernel('Conv2DBackpropFilter', 'cpu'), () => time(bf, 2, 0)),
    'cpu delegate',
  );
  tf.dispose([x, dy]);
}

for (const [M, K, Nn] of [
  [8192, 288, 32],
  [512, 128, 128],
  [2048, 576, 64],
]) {
  const a = tf.randomNormal([M, K]);
  const g = tf.randomNormal([M, Nn]);
  const mm = () => tf.matMul(a, g, true, false); // a dense layer's weight gradient xᵀ·dy
  await vsBuiltIn('BatchMatMul aᵀ·b', 'BatchMatMul', `[${M},${K}]ᵀ·[${M},${Nn}]`, mm);
  tf.dispose([a, g]);
}
// Attention's products: [b·heads, tokens, d]·[…, d, tokens] and back (the LDM's 8×8 latent, 4 heads).
for (const [Bt, M, K, Nn] of [
  [64, 64, 16, 64],
  [64, 64, 64, 16],
]) {
  const a = tf.randomNormal([Bt, M, K]);
  const b = tf.randomNormal([Bt, K, Nn]);
  const mm = () => tf.matMul(a, b);
  await vsBuiltIn('BatchMatMul batched', 'BatchMatMul', `[${Bt},${M},${K}]·[${Bt},${K},${Nn}]`, mm);
  tf.dispose([a, b]);
}

for (const [B, H, C, G] of [
  [16, 32, 32, 8],
  [16, 16, 48, 8],
  [16, 8, 96, 8],
]) {
  const x = tf.randomNormal([B, H, H, C]) as tf.Tensor4D;
  const gamma = tf.ones([C]);
  const beta = tf.zeros([C]);
  const proj = tf.randomNormal([B, H, H, C]);
  const step = (norm: (x: tf.Tensor4D, g: tf.Tensor, b: tf.Tensor) => tf.Tensor) => () =>
    tf.tidy(() => {
      const gs = tf.grads((xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(norm(xx as tf.Tensor4D, g, b), proj)),
      )([x, gamma, beta]);
      return tf.addN([tf.sum(gs[0]), tf.sum(gs[1]), tf.sum(gs[2])]);
    });
  const fused = step((xx, g, b) => groupNormFused(xx, g, b, G, 1e-5));
  const composite = step((xx, g, b) => groupNormComposite(xx, g, b, G));
  report('GroupNorm fwd+bwd', `x[${B},${H},${H},${C}] G${G}`, await time(fused), await time(composite), 'tfjs ops');
  tf.dispose([x, gamma, beta, proj]);
}
console.log(`wrote ${writeResult('kernels', { reps: N, rows })}`);
