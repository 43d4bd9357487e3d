/**
 * DeviceAdam's fused step on webgpu (src/backend/kernels/adam.ts) against its ops path on the same
 * backend: the same weights and moments after 3 AdamW steps (bound 1e-6 of max |w|: the same
 * float32 operations in the same order; the shader compiler may fuse a multiply-add, one rounding
 * apart), in 3 dispatches per variable and step and no uploads but the host gradients'. Shapes: a scalar,
 * a matrix and a vector above tfjs's CPU hand-off size. Skips without a WebGPU adapter.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { poolCounters, shutdownBackend } from '../src/backend/index.js';
import { FUSED_ADAM, registerFusedAdam } from '../src/backend/kernels/adam.js';
import { DeviceAdam } from '../src/nn/adam.js';
import { Rng } from '../src/util/rng.js';
import { webgpuSkipReason } from './helpers.js';

const TOL = 1e-6;
const SHAPES = [[], [3, 5], [1031]];
const STEPS = 3;

const skipReason = (await webgpuSkipReason()) ?? false;
after(() => {
  if (!skipReason) shutdownBackend();
});

const normals = (rng: Rng, n: number) => Float32Array.from({ length: n }, () => rng.normal());

/** Weights and moments after STEPS steps from seeded weights and gradients. */
async function train(): Promise<Float32Array[]> {
  const rng = new Rng(3);
  const vars = SHAPES.map((s, i) =>
    tf.variable(
      tf.tensor(
        normals(
          rng,
          s.reduce((a, b) => a * b, 1),
        ),
        s,
      ),
      true,
      `adam_case_${i}_${Math.random()}`,
    ),
  );
  const opt = new DeviceAdam({ lr: 0.05, weightDecay: 0.01 });
  for (let t = 0; t < STEPS; t++) {
    await opt.apply(vars, Object.fromEntries(vars.map((v) => [v.name, normals(rng, v.size)])));
  }
  const state = await opt.getState();
  const out = [
    ...(await Promise.all(vars.map(async (v) => (await v.data()) as Float32Array))),
    ...vars.map((v) => state.m.get(v.name)!),
    ...vars.map((v) => state.v.get(v.name)!),
  ];
  opt.dispose();
  tf.dispose(vars);
  return out;
}

test(
  'webgpu DeviceAdam: the fused step equals the ops path, in 3 dispatches per variable',
  { skip: skipReason },
  async () => {
    const before = poolCounters()!;
    const fused = await train();
    const mid = poolCounters()!;
    // 3 per variable and step, and 2 per variable for the zero moments made at its first step.
    assert.equal(
      mid.dispatches - before.dispatches,
      3 * SHAPES.length * STEPS + 2 * SHAPES.length,
      'dispatches of the fused steps',
    );
    assert.equal(
      mid.uploads - before.uploads,
      SHAPES.length * (STEPS + 1),
      "uploads: the initial weights and each step's host gradients only",
    );
    tf.unregisterKernel(FUSED_ADAM, 'webgpu');
    let ops: Float32Array[];
    try {
      ops = await train();
    } finally {
      await registerFusedAdam('webgpu');
    }
    const opsDispatches = poolCounters()!.dispatches - mid.dispatches;
    for (const [i, f] of fused.entries()) {
      let err = 0;
      let scale = 0;
      for (let j = 0; j < f.length; j++) {
        err = Math.max(err, Math.abs(f[j] - ops[i][j]));
        scale = Math.max(scale, Math.abs(ops[i][j]));
      }
      assert.ok(err <= TOL * scale, `tensor ${i}: max |fused − ops| ${err} > ${TOL} × ${scale}`);
    }
    console.log(
      `# Adam ${STEPS} steps × ${SHAPES.length} variables: ${mid.dispatches - before.dispatches} dispatches fused, ${opsDispatches} by ops`,
    );
  },
);
