/**
 * Memory under the loops that run for hours (issue #32), on wasm and on webgpu (lavapipe in CI):
 *   - the DDIM sample and invert loops (STEPS), and on wasm an SDD guidance iteration (the SDS
 *     gradient and its injection back through the VAE encoder), an HQS scan and an edit
 *     evaluation: the live tensor count is the same at every step (exactly: a leak of one tensor
 *     per step fails), and back to where it started after each. On webgpu the SDD iteration, HQS
 *     scan and evaluation are checked the same way, step by step, inside webgpu_leaks.test.ts's
 *     whole SDD run on toyfaces (they ran here too until 2026-12-05: 9.6 CPU-s on lavapipe);
 *   - on webgpu, with the pool's budget set small here (POOL_MB, STAGING_MB, so that eviction
 *     happens at these toy sizes), the free buffers pooled stay within the budgets at every step;
 *     the bounded pool computes what wasm computes (DDIM sample, CHAIN_TOL); flushDevicePool()
 *     empties it and the next computation is unchanged bit for bit;
 *   - host values uploaded by queue.writeBuffer (the pool's upload path) arrive exactly, float32,
 *     int32 and bool, into fresh and into pooled buffers, between dispatches of one encoder;
 *   - a program binding a tensor above the device's maxStorageBufferBindingSize fails at once,
 *     naming the program and the size, and allocates nothing;
 *   - batched ops whose tensors exceed that limit only batched run in batch chunks
 *     (kernels/webgpu_batch_split.ts) and equal wasm's unsplit result (SPLIT_TOL): under a 1 MiB
 *     limit (setBindingLimit) a batched and a 2-D matMul, a fused matMul, conv2d and both its
 *     gradients, a fused conv2d and the fused attention; at lavapipe's own 128 MiB a batched
 *     matMul with a 144 MiB output; a single item above the limit still fails, naming the program;
 *   - tfjs-backend-webgpu's private BufferManager is what webgpu_pool.ts was written against: the
 *     package version, the fields and the free-list semantics. These fail after a tfjs upgrade,
 *     on purpose: re-read buffer_manager.ts/backend_webgpu.ts, then update webgpu_pool.ts.
 * Each backend's peak (deviceMemory().peak_bytes) is printed. Without a WebGPU adapter the webgpu
 * tests skip with the reason (as the conformance tests do); wasm runs everywhere.
 * Cost (2026-12-05, 2 cores, load ~4): 16 s wall, 15.7 CPU-s (before this cut: 31 CPU-s at load
 * ~9): the batch splits 8.6 s (the paper-random-tiny VAE with its gradient 4.5 CPU-s on lavapipe,
 * the 144 MiB matMul 2.2), the wasm loops 2 s, the webgpu DDIM loops 3.4 s (6.3 s before the
 * rerun after the flush was only the sample and STEPS went 4 → 2).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { deviceMemory, flushDevicePool, initBackend, poolCounters, shutdownBackend } from '../src/backend/index.js';
import { BindingTooLargeError, checkPoolInternals, setBindingLimit } from '../src/backend/webgpu_pool.js';
import { fusedAttention } from '../src/backend/kernels/attention.js';
import { attentionOps } from '../src/nn/attention.js';
import { dawnFlags } from '../src/backend/webgpu.js';
import { DdimScheduler, DDIM_SD } from '../src/diffusion/schedulers/ddim.js';
import { cfgEps, ddimInvert, ddimSample, type EpsFn } from '../src/diffusion/pipelines/sample.js';
import { guidanceCondition } from '../src/sdd/guidance.js';
import { hqsScan } from '../src/sdd/hqs.js';
import { evaluateEdits } from '../src/eval/edits.js';
import { Rng } from '../src/util/rng.js';
import type { World } from '../src/world/types.js';
import { loadToyfacesWorld } from '../datasets/toyfaces/world_models.js';
import { face, renderBatch } from '../datasets/toyfaces/world.js';
import { webgpuSkipReason } from './helpers.js';
import { GUIDE, PROMPT, sdsStep } from './sds_step.js';
import { ConfigReader, readJsonObject } from '../src/diffusion/models/diffusers_config.js';
import { parseVaeConfig, randomVae, vaeDecode, vaeEncodeMoments, type Vae } from '../src/diffusion/models/sd_vae.js';

/** Small budgets (MiB) so that the toy models' buffers overflow them and eviction is exercised. */
const POOL_MB = 4;
const STAGING_MB = 0.25;
process.env.SDD_WEBGPU_POOL_MB = String(POOL_MB);
process.env.SDD_WEBGPU_STAGING_MB = String(STAGING_MB);
const MIB = 1024 * 1024;
/**
 * webgpu vs wasm after a 2-step CFG DDIM chain: the U-Net runs 4 times and CFG multiplies
 * ε_c − ε_u by 7.5, so per-kernel float32 differences (~1e-6) grow; the conformance tests bound
 * the same chain at 1e-3 (max |Δ| / max |wasm|).
 */
const CHAIN_TOL = 1e-3;
const STEPS = 2;

/** What a loop looked like at each of its steps. */
interface Trace {
  tensors: number[];
  pooled: number[];
  stagingPooled: number[];
}

const newTrace = (): Trace => ({ tensors: [], pooled: [], stagingPooled: [] });

function probe(trace: Trace): void {
  trace.tensors.push(tf.memory().numTensors);
  const p = poolCounters();
  trace.pooled.push(p?.bytes_pooled ?? 0);
  trace.stagingPooled.push(p?.staging_bytes_pooled ?? 0);
}

/** Flat tensor count across steps, back to the start afterwards; on webgpu, the pool within budget. */
function assertBounded(name: string, trace: Trace, before: number, afterCount: number): void {
  assert.ok(trace.tensors.length >= 2, `${name}: probed ${trace.tensors.length} steps`);
  assert.deepEqual(
    trace.tensors,
    trace.tensors.map(() => trace.tensors[0]),
    `${name}: live tensors per step ${trace.tensors.join(', ')}`,
  );
  assert.equal(afterCount, before, `${name}: ${afterCount} tensors alive after, ${before} before`);
  const maxPooled = Math.max(...trace.pooled);
  const maxStaging = Math.max(...trace.stagingPooled);
  assert.ok(maxPooled <= POOL_MB * MIB, `${name}: ${maxPooled} B pooled > budget ${POOL_MB} MiB`);
  assert.ok(maxStaging <= STAGING_MB * MIB, `${name}: ${maxStaging} B of staging pooled > budget ${STAGING_MB} MiB`);
  console.log(
    `# ${tf.getBackend()} ${name}: ${trace.tensors.length} steps at ${trace.tensors[0]} tensors; max pooled ${(maxPooled / MIB).toFixed(2)} MiB (staging ${(maxStaging / MIB).toFixed(2)})`,
  );
}

/** An ε function that records the memory at each call (the start of each DDIM step). */
function probed(eps: EpsFn, trace: Trace): EpsFn {
  return (z, t) => {
    probe(trace);
    return eps(z, t);
  };
}

const IMAGES = renderBatch([face('test', 0), face('test', 1)], 32);

/** The DDIM latent z_T and its sample; `from` skips the inversion (the rerun after a flush). */
interface DdimResult {
  zT: Float32Array;
  sample: Float32Array;
}

async function ddimLoops(world: World, from?: Float32Array): Promise<DdimResult> {
  const d = world.diffusion;
  const scheduler = new DdimScheduler({ ...DDIM_SD, steps: STEPS });
  const cond = await d.textCondition([PROMPT.text]);
  const uncond = await d.textCondition(['']);
  const shape: [number, number, number, number] = [1, ...d.latentShape];
  const z0 = Float32Array.from({ length: shape.reduce((a, b) => a * b) }, (_, i) => Math.sin(i * 0.37));
  const guided = cfgEps(d.eps, cond, uncond, 7.5);
  try {
    const before = tf.memory().numTensors;
    const inv = newTrace();
    const zT = from ?? (await ddimInvert(probed(guided.eps, inv), scheduler, z0, shape));
    if (!from) assertBounded('DDIM invert', inv, before, tf.memory().numTensors);
    const smp = newTrace();
    const sample = await ddimSample(probed(guided.eps, smp), scheduler, zT, shape);
    assertBounded('DDIM sample', smp, before, tf.memory().numTensors);
    return { zT, sample };
  } finally {
    guided.dispose();
  }
}

async function sddIterations(world: World): Promise<void> {
  const d = world.diffusion;
  const cond = await guidanceCondition(d, PROMPT, 2);
  const x = tf.tensor4d(IMAGES, [2, 32, 32, 3]);
  const noise = tf.randomNormal([2, ...d.latentShape], 0, 1, 'float32', 21) as tf.Tensor4D;
  const vaeNoise = tf.randomNormal([2, ...d.latentShape], 0, 1, 'float32', 22) as tf.Tensor4D;
  const trace = newTrace();
  const before = tf.memory().numTensors;
  try {
    for (const t of [200, 800]) {
      probe(trace);
      const { g, dx } = sdsStep(d, { x, t, cond, noise, vaeNoise });
      await g.data();
      await dx.data();
      tf.dispose([g, dx]);
    }
    probe(trace);
    assertBounded('SDD guidance iteration', trace, before, tf.memory().numTensors);
  } finally {
    tf.dispose([cond.context, cond.mask, x, noise, vaeNoise]);
  }
}

async function hqs(world: World): Promise<void> {
  const x = tf.tensor4d(IMAGES, [2, 32, 32, 3]);
  const trace = newTrace();
  const before = tf.memory().numTensors;
  try {
    await hqsScan(
      world,
      x,
      PROMPT,
      [200, 500, 800],
      { guidance: GUIDE, vae_sample: true, top_k_per: 'image' },
      new Rng(5),
      () => probe(trace),
    );
    assertBounded('HQS scan', trace, before, tf.memory().numTensors);
  } finally {
    x.dispose();
  }
}

async function evaluation(world: World): Promise<void> {
  const n = 4;
  const original = renderBatch(
    Array.from({ length: n }, (_, i) => face('test', i)),
    world.imageSize,
  );
  const edited = renderBatch(
    Array.from({ length: n }, (_, i) => face('test', i + n)),
    world.imageSize,
  );
  const trace = newTrace();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 2; i++) {
    probe(trace);
    await evaluateEdits(world, world.prompts[0], original, edited);
  }
  probe(trace);
  assertBounded('evaluation', trace, before, tf.memory().numTensors);
}

/**
 * The loops on the active backend (on webgpu the DDIM loops alone: the SDD iteration, HQS scan
 * and evaluation run there step by step inside webgpu_leaks.test.ts's whole SDD run, which checks
 * the same flat count at each step and the pool's budget); the DDIM result for the comparison.
 */
async function allLoops(world: World, ddimOnly = false): Promise<DdimResult> {
  const ddim = await ddimLoops(world);
  if (!ddimOnly) {
    await sddIterations(world);
    await hqs(world);
    await evaluation(world);
  }
  const m = deviceMemory();
  console.log(
    `# ${m.backend} peak ${(m.peak_bytes / MIB).toFixed(1)} MiB; now ${m.tensors} tensors, ${(m.bytes_in_use / MIB).toFixed(1)} MiB in use, ${(m.bytes_pooled / MIB).toFixed(1)} MiB pooled`,
  );
  return ddim;
}

/**
 * Batch-split ops vs wasm's unsplit ones, relative to the largest |wasm| value: the same float32
 * products summed in another order (the filter gradient adds the chunks' partial sums). Measured
 * on lavapipe: ≤ 3.9e-6 (the filter gradient; 1.5e-6 the fused conv2d), the matMuls exact.
 */
const SPLIT_TOL = 1e-4;
/** The binding limit the small cases run under (setBindingLimit), so that they split at ~1.5 MiB. */
const SMALL_LIMIT = MIB;

/** Deterministic values in [−1, 1]. */
const wave = (n: number, k: number) => {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = Math.sin(i * k + k);
  return v;
};
const t3 = (shape: [number, number, number], k: number) => tf.tensor3d(wave(shape[0] * shape[1] * shape[2], k), shape);

interface SplitCase {
  name: string;
  run: () => tf.Tensor[];
}

/** Batched matMul with a 3-item output of `rows`·`cols` floats each. */
const batchedMatMul = (rows: number, cols: number): SplitCase => ({
  name: `batched matMul, output [3, ${rows}, ${cols}]`,
  run: () => [tf.matMul(t3([3, rows, 8], 0.1), t3([3, 8, cols], 0.3))],
});

/** Each above SMALL_LIMIT (1 MiB) only batched: 3 items of 0.5 MiB (the 2-D matMul: 1536 rows). */
const SMALL_CASES: SplitCase[] = [
  batchedMatMul(128, 1024),
  {
    name: '2-D matMul (a linear layer), input [1536, 256]',
    run: () => [tf.matMul(tf.tensor2d(wave(1536 * 256, 0.7), [1536, 256]), tf.tensor2d(wave(256 * 4, 1.1), [256, 4]))],
  },
  {
    name: 'fused matMul + bias + relu, output [3, 128, 1024]',
    run: () => {
      const [a, b, bias] = [t3([3, 128, 8], 0.1), t3([3, 8, 1024], 0.3), tf.tensor1d(wave(1024, 0.9))];
      // The reference unfused: tfjs-backend-wasm 4.22's fused matMul is off by up to 1.9 at batch 3 with a bias.
      if (tf.getBackend() !== 'webgpu') return [tf.relu(tf.add(tf.matMul(a, b), bias))];
      return [tf.fused.matMul({ a, b, bias, activation: 'relu' })];
    },
  },
  {
    name: 'conv2d 2×2/2 and its gradients (input, filter), input [3, 32, 32, 128]',
    run: () => {
      const x = tf.tensor4d(wave(3 * 32 * 32 * 128, 0.01), [3, 32, 32, 128]);
      const w = tf.tensor4d(wave(2 * 2 * 128 * 2, 0.2), [2, 2, 128, 2]);
      const dy = tf.tensor4d(wave(3 * 16 * 16 * 2, 0.05), [3, 16, 16, 2]);
      const f = (xi: tf.Tensor, wi: tf.Tensor) => tf.conv2d(xi as tf.Tensor4D, wi as tf.Tensor4D, 2, 'valid');
      const [dx, dw] = tf.grads(f)([x, w], dy);
      return [f(x, w), dx, dw];
    },
  },
  {
    name: 'fused conv2d + bias, input [3, 32, 32, 128]',
    run: () => {
      const x = tf.tensor4d(wave(3 * 32 * 32 * 128, 0.01), [3, 32, 32, 128]);
      const w = tf.tensor4d(wave(3 * 3 * 128 * 2, 0.2), [3, 3, 128, 2]);
      return [tf.fused.conv2d({ x, filter: w, strides: 1, pad: 'same', bias: tf.tensor1d([0.5, -0.5]) })];
    },
  },
  {
    name: 'fused attention, queries [3, 2048, 64]',
    run: () => {
      const [q, k, v] = [t3([3, 2048, 64], 0.13), t3([3, 8, 64], 0.17), t3([3, 8, 64], 0.19)];
      if (tf.getBackend() === 'webgpu') return [fusedAttention(q, k, v, 0.125)];
      const as4 = (t: tf.Tensor3D) => tf.reshape(t, [1, ...t.shape]) as tf.Tensor4D;
      return [tf.reshape(attentionOps(as4(q), as4(k), as4(v)), q.shape)];
    },
  },
];

/**
 * The SD VAE splits itself (sd_vae.ts byBatchChunks: GroupNorm and additions bind whole activations,
 * which no kernel wrapper can split): paper-random-tiny's VAE (16–32 channels, 32² images) at batch 12
 * holds 1.5 MiB activations, above SMALL_LIMIT; it runs in chunks of 8 + 4 and equals wasm's one call.
 */
let tinyVae: Vae | null = null;
const TINY_VAE_JSON = 'datasets/paper/configs/tiny/vae.json';
const VAE_CASE: SplitCase = {
  name: 'SD VAE (paper-random-tiny) encode, decode and the decode gradient, batch 12 of 32²',
  run: () => {
    const { params, config } = tinyVae!;
    const { mean, logvar } = vaeEncodeMoments(
      params,
      config,
      tf.tensor4d(wave(12 * 32 * 32 * 3, 0.03), [12, 32, 32, 3]),
    );
    const decode = (z: tf.Tensor) => vaeDecode(params, config, z as tf.Tensor4D);
    return [mean, logvar, decode(mean), tf.grad((z) => tf.sum(tf.square(decode(z))))(mean)];
  },
};
SMALL_CASES.push(VAE_CASE);

/** At the device's own limit (lavapipe: 128 MiB): a 144 MiB output assembled from 48 MiB chunks. */
const REAL_CASE = batchedMatMul(4096, 3072);

/** Every case's outputs on the active backend, read back (all tensors disposed). */
async function splitOutputs(cases: SplitCase[]): Promise<Float32Array[][]> {
  const all: Float32Array[][] = [];
  for (const c of cases) {
    const outs = tf.tidy(c.run);
    all.push(await Promise.all(outs.map(async (t) => (await t.data()) as Float32Array)));
    tf.dispose(outs);
  }
  return all;
}

function assertSplitClose(cases: SplitCase[], got: Float32Array[][], expected: Float32Array[][]): void {
  cases.forEach((c, i) =>
    got[i].forEach((g, j) => {
      const e = expected[i][j];
      assert.equal(g.length, e.length);
      let err = 0;
      let scale = 0;
      for (let k = 0; k < e.length; k++) {
        err = Math.max(err, Math.abs(g[k] - e[k]));
        scale = Math.max(scale, Math.abs(e[k]));
      }
      console.log(`# split ${c.name} [${j}]: max |Δ|/max|wasm| ${(err / scale).toExponential(2)} (bound ${SPLIT_TOL})`);
      assert.ok(err / scale <= SPLIT_TOL, `${c.name} output ${j}: ${err / scale}`);
    }),
  );
}

// ---------------------------------------------------------------------------------------------

test("SDD_WEBGPU_DAWN_TOGGLES becomes Dawn's enable-dawn-features flag (none by default)", () => {
  assert.deepEqual(dawnFlags({}), []);
  assert.deepEqual(dawnFlags({ SDD_WEBGPU_DAWN_TOGGLES: ' skip_validation, disable_robustness ' }), [
    'enable-dawn-features=skip_validation,disable_robustness',
  ]);
});

test('tfjs-backend-webgpu is 4.22.0, whose private BufferManager webgpu_pool.ts reaches into', () => {
  const version = (
    createRequire(import.meta.url)('@tensorflow/tfjs-backend-webgpu/package.json') as { version: string }
  ).version;
  assert.equal(
    version,
    '4.22.0',
    'a new tfjs-backend-webgpu: check buffer_manager.ts and backend_webgpu.ts against webgpu_pool.ts INTERNALS, then update this pin',
  );
});

const skipReason = (await webgpuSkipReason()) ?? false;
const hasGpu = !skipReason;
test(
  'webgpu: a binding above maxStorageBufferBindingSize fails with the program and the size',
  { skip: skipReason },
  async () => {
    await initBackend('webgpu');
    // The backend's device is not in tfjs's public types.
    const limit = (tf.backend() as unknown as { device: { limits: { maxStorageBufferBindingSize: number } } }).device
      .limits.maxStorageBufferBindingSize;
    const n = Math.floor(limit / 4) + 1;
    const tensors = tf.memory().numTensors;
    const held = poolCounters()!.bytes_allocated;
    const message =
      /webgpu: \w+Program binds output \[\d+\] float32 of [\d.]+ MiB, above this device's maxStorageBufferBindingSize/;
    assert.throws(
      () => tf.tidy(() => tf.fill([n], 1.5)),
      (e) => e instanceof BindingTooLargeError && message.test(e.message),
    );
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(poolCounters()!.bytes_allocated, held, 'nothing allocated for the failed program');
  },
);

test(
  'webgpu: uploads by queue.writeBuffer arrive exactly (float32, int32, bool; fresh and pooled buffers)',
  { skip: skipReason },
  async () => {
    await initBackend('webgpu');
    const before = poolCounters()!;
    const n = 1031;
    const f = (k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k) * 1e3);
    for (let round = 0; round < 3; round++) {
      // Round 0 takes fresh buffers; later rounds get the same sizes back from the pool.
      const a = tf.tensor1d(f(round + 1));
      const i = tf.tensor1d(
        Int32Array.from({ length: n }, (_, j) => ((j * 7919 * (round + 1)) % 100003) - 50000),
        'int32',
      );
      const b = tf.tensor1d(
        Array.from({ length: n }, (_, j) => (j + round) % 3 === 0),
        'bool',
      );
      // Dispatches before and after the uploads in one encoder: the writes must land in order.
      const x = tf.add(a, 0);
      const y = tf.add(tf.mul(i, 1), 0);
      const z = tf.logicalAnd(b, b);
      assert.deepEqual(await x.data(), f(round + 1));
      assert.deepEqual(Array.from(await y.data()), Array.from(await i.data()));
      assert.deepEqual(
        Array.from(await z.data()),
        Array.from({ length: n }, (_, j) => ((j + round) % 3 === 0 ? 1 : 0)),
      );
      tf.dispose([a, i, b, x, y, z]);
    }
    const after = poolCounters()!;
    assert.ok(after.written_uploads - before.written_uploads >= 9, 'the uploads went through queue.writeBuffer');
    assert.equal(
      after.created_by_kind.upload,
      before.created_by_kind.upload,
      'no MAP_WRITE staging buffer was created',
    );
  },
);

test(
  'webgpu: batched ops above the binding limit split along the batch and equal wasm unsplit; one item too big still fails',
  { skip: skipReason },
  async () => {
    await initBackend('wasm');
    tinyVae = randomVae(parseVaeConfig(new ConfigReader(TINY_VAE_JSON, readJsonObject(TINY_VAE_JSON))), 5);
    const expected = await splitOutputs([...SMALL_CASES, REAL_CASE]);
    await initBackend('webgpu');
    const limit = (tf.backend() as unknown as { device: { limits: { maxStorageBufferBindingSize: number } } }).device
      .limits.maxStorageBufferBindingSize;
    assert.ok(limit < 144 * MIB, `REAL_CASE exceeds this device's binding limit (${limit / MIB} MiB)`);
    const tensors = tf.memory().numTensors;
    const inUse = poolCounters()!.bytes_in_use;
    setBindingLimit(SMALL_LIMIT);
    try {
      assertSplitClose(SMALL_CASES, await splitOutputs(SMALL_CASES), expected);
      // One item of 2 MiB: no split helps, the program and the size are named.
      assert.throws(
        () => tf.tidy(() => tf.matMul(t3([1, 512, 8], 0.1), t3([1, 8, 1024], 0.3))),
        (e) =>
          e instanceof BindingTooLargeError &&
          /MatMul\w*Program binds output \[1, 512, 1024\] float32 of 2\.0 MiB/.test(e.message),
      );
    } finally {
      setBindingLimit(null);
    }
    assertSplitClose([REAL_CASE], await splitOutputs([REAL_CASE]), expected.slice(-1));
    assert.equal(tf.memory().numTensors, tensors, 'no tensor left behind');
    tinyVae.params.dispose();
    flushDevicePool();
    assert.equal(poolCounters()!.bytes_in_use, inUse, 'no buffer left in use');
  },
);

let wasmSample: Float32Array | null = null;
let world: World | null = null;

after(() => {
  world?.dispose();
  if (hasGpu) shutdownBackend();
});

test(
  'the webgpu backend has the private fields and free-list semantics the pool relies on',
  { skip: skipReason },
  async () => {
    await initBackend('webgpu');
    const backend = tf.backend();
    assert.deepEqual(checkPoolInternals(backend), []);
    // The free list: keyed `${size}_${usage}`, a released buffer goes there, the next acquire of the
    // same size and usage takes it back (the eviction removes buffers from exactly these lists).
    const bm = (
      backend as unknown as {
        bufferManager: {
          freeBuffers: Map<string, unknown[]>;
          numFreeBuffers: number;
          acquireBuffer(s: number, u: number): unknown;
          releaseBuffer(b: unknown): void;
        };
      }
    ).bufferManager;
    const usage = 0x80 | 0x04 | 0x08; // STORAGE | COPY_SRC | COPY_DST, as tfjs's tensors
    const size = 4 * 1237;
    const b = bm.acquireBuffer(size, usage);
    const free = bm.numFreeBuffers;
    bm.releaseBuffer(b);
    assert.ok(
      bm.freeBuffers.get(`${size}_${usage}`)?.includes(b),
      'a released buffer is in freeBuffers under "size_usage"',
    );
    assert.equal(bm.numFreeBuffers, free + 1);
    assert.equal(bm.acquireBuffer(size, usage), b, 'the next acquire of that size and usage reuses it');
    bm.releaseBuffer(b);
  },
);

test('wasm: tensor count flat across DDIM, SDD, HQS and evaluation steps', async () => {
  await initBackend('wasm');
  world ??= loadToyfacesWorld();
  wasmSample = (await allLoops(world)).sample;
});

test(
  'webgpu: tensor count flat and the pool within its budget at every DDIM step; results as on wasm',
  { skip: skipReason },
  async () => {
    await initBackend('webgpu');
    world ??= loadToyfacesWorld();
    const { zT, sample } = await allLoops(world, true);
    const c = poolCounters()!;
    assert.equal(c.budget_bytes, POOL_MB * MIB);
    assert.ok(c.evicted > 0, 'the budget was small enough to evict');
    console.log(
      `# webgpu pool: created ${c.created} buffers (${(c.created_bytes / MIB).toFixed(1)} MiB), reused ${c.reused}, evicted ${c.evicted}, forced submits ${c.forced_submits}; peak held ${(c.peak_bytes_allocated / MIB).toFixed(1)} MiB, in use ${(c.peak_bytes_in_use / MIB).toFixed(1)} MiB`,
    );
    if (wasmSample) {
      let err = 0;
      let scale = 0;
      for (let i = 0; i < sample.length; i++) {
        err = Math.max(err, Math.abs(sample[i] - wasmSample[i]));
        scale = Math.max(scale, Math.abs(wasmSample[i]));
      }
      console.log(
        `# webgpu vs wasm DDIM sample: max |Δ|/max|wasm| ${(err / scale).toExponential(2)} (bound ${CHAIN_TOL})`,
      );
      assert.ok(err / scale <= CHAIN_TOL, `DDIM sample differs from wasm: ${err / scale}`);
    }
    // The batch-boundary flush: nothing pooled after it, and the next computation is unchanged.
    const flushed = flushDevicePool();
    const post = poolCounters()!;
    assert.equal(post.bytes_pooled, 0);
    assert.equal(post.bytes_allocated, post.bytes_in_use, 'all buffers held are in use after a flush');
    console.log(`# flushDevicePool freed ${(flushed / MIB).toFixed(2)} MiB`);
    const again = (await ddimLoops(world, zT)).sample;
    assert.deepEqual(again, sample, 'the same DDIM sample from the same z_T after a flush');
  },
);
