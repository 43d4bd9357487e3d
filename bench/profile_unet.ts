/**
 * make profile: where one training step of the bench U-Net spends its time on this backend,
 * per kernel (and per conv shape), from tf.profile. The starting point for kernel work.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, backendFromEnv } from '../src/backend/index.js';
import { createAdam } from '../src/nn/adam.js';
import { modelLoss } from '../src/nn/models.js';
import { Params } from '../src/nn/params.js';
import { argValue, UNET_BENCH_CFG } from './common.js';

const size = Number(argValue('size', '32'));
const top = Number(argValue('top', '25'));
await initBackend(backendFromEnv());
const cfg = UNET_BENCH_CFG;
const p = new Params(0);
const x = tf.randomNormal([8, size, size, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
const y = tf.randomNormal([8, size, size, 3], 0, 1, 'float32', 2);
const opt = createAdam({ lr: 1e-4 });
tf.tidy(() => void modelLoss('unet', p, x, y, cfg));
// The profile covers the optimizer too; the awaited reads end each step (any backend, webgpu too).
const step = async () => {
  const { value, grads } = tf.variableGrads(() => modelLoss('unet', p, x, y, cfg), p.list());
  await opt.apply(p.list(), grads);
  await value.data();
  tf.dispose([value, grads]);
};
await step();
await step();
const t0 = performance.now();
const prof = await tf.profile(step);
const wall = performance.now() - t0;
const agg = new Map<string, { n: number; ms: number }>();
for (const k of prof.kernels) {
  const key = k.name.startsWith('Conv') ? `${k.name} ${JSON.stringify(k.inputShapes)}` : k.name;
  const e = agg.get(key) ?? { n: 0, ms: 0 };
  e.n++;
  e.ms += k.kernelTimeMs as number;
  agg.set(key, e);
}
const total = [...agg.values()].reduce((a, e) => a + e.ms, 0);
console.log(
  `${size}², batch 8: ${prof.kernels.length} kernels, ${total.toFixed(0)} ms in kernels, ${wall.toFixed(0)} ms wall (profiling adds overhead)`,
);
for (const [name, e] of [...agg.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) {
  console.log(
    `${name.padEnd(58)} ${String(e.n).padStart(4)} calls ${e.ms.toFixed(1).padStart(7)} ms ${((100 * e.ms) / total).toFixed(1).padStart(5)}%`,
  );
}
