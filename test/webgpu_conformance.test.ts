/**
 * WebGPU conformance: every computation below runs on the wasm backend (the reference, with its
 * fused GroupNorm and replacement kernels) and then on webgpu, in this one process, and the host
 * arrays are compared. Small shapes only (batch 1–2, 32×32 images, 8×8×4 latents), reused across
 * checks so that few distinct shader pipelines compile: on lavapipe compilation dominates.
 *
 *   1. forward + gradients of every zoo model (w.r.t. the inputs and every parameter);
 *   2. DDIM inversion and sampling with the world's ε-model under CFG (5 scheduler steps);
 *   3. an SDD guidance step (the SDS gradient, and its injection back through the VAE encoder)
 *      and an HQS scan (3 timesteps, K = 2 images);
 *   6. groupNormComposite (the path backends without the fused kernel take) against a float64
 *      host reference, on webgpu and on the cpu backend, and against the wasm fused kernel.
 * (4 and 5, the CLI end to end and `sdd zoo eval`, are in webgpu_conformance_cli.test.ts.)
 *
 * Errors are max |webgpu − wasm| / max |wasm| per tensor ("relative to the reference's scale").
 * Tolerances: forward ≤ 1e-4, gradients ≤ 1e-3 (FORWARD_TOL, GRAD_TOL); chains of several model
 * evaluations get their own, stated where they are defined. Each test prints what it measured.
 *
 * Without any WebGPU adapter (initBackend('webgpu') throws BackendChoiceError) every webgpu test
 * is skipped with the reason; the cpu-backend GroupNorm check does not need an adapter and runs.
 * With an adapter, failures are failures. Each webgpu computation runs inside device error
 * scopes, so a shader that fails to compile fails its own test with Dawn's message instead of
 * poisoning the device for the rest of the file.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { BackendChoiceError, initBackend, shutdownBackend, type BackendInfo } from '../src/backend/index.js';
import { releaseGpu } from '../src/backend/webgpu.js';
import { groupNormComposite, groupNormOp } from '../src/nn/layers.js';
import type { Params } from '../src/nn/params.js';
import { Rng } from '../src/util/rng.js';
import { DdimScheduler, DDIM_SD } from '../src/diffusion/schedulers/ddim.js';
import { cfgEps, ddimInvert, ddimSample } from '../src/diffusion/pipelines/sample.js';
import { guidanceCondition } from '../src/sdd/guidance.js';
import { hqsScan, readHqs } from '../src/sdd/hqs.js';
import type { World } from '../src/world/types.js';
import { loadToyfacesWorld } from '../datasets/toyfaces/world_models.js';
import { loadParams } from '../datasets/toyfaces/zoo/store.js';
import { face, renderBatch } from '../datasets/toyfaces/world.js';
import { tokenizeBatch, MAX_TOKENS } from '../datasets/toyfaces/tokenizer.js';
import { featnetFeatures, featnetLogits, featnetLoss, HEADS } from '../datasets/toyfaces/models/featnet.js';
import { idnetEmbed } from '../datasets/toyfaces/models/idnet.js';
import { clipImageEmbed, clipTextEmbed } from '../datasets/toyfaces/models/clip.js';
import { vaeDecode, vaeEncode } from '../datasets/toyfaces/models/vae.js';
import { encode as styleEncode, generate } from '../datasets/toyfaces/models/stylegen.js';
import { condUnet } from '../src/diffusion/models/cond_unet.js';
import { diffaeEps, semanticEncode } from '../datasets/toyfaces/models/diffae.js';
import { configOf } from '../datasets/toyfaces/models/configs.js';
import { GUIDE, PROMPT, sdsStep } from './sds_step.js';

/** Max error of a forward value, relative to the max |value| of the wasm reference. */
const FORWARD_TOL = 1e-4;
/** Max error of a gradient, relative to the max |value| of the wasm reference gradient. */
const GRAD_TOL = 1e-3;

type Kind = 'forward' | 'grad';
/** Named host arrays of one computation, each marked forward value or gradient. */
type Outputs = Map<string, { kind: Kind; values: Float32Array | Float64Array }>;

/** max |got − ref| / max |ref|; NaN/Inf anywhere in `got` (or a length mismatch) is Infinity. */
function relError(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (got.length !== ref.length) return Infinity;
  let scale = 0;
  let err = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i] - ref[i]);
    if (!Number.isFinite(d)) return Infinity;
    scale = Math.max(scale, Math.abs(ref[i]));
    err = Math.max(err, d);
  }
  return scale === 0 ? (err === 0 ? 0 : Infinity) : err / scale;
}

const fmt = (e: number) => (Number.isFinite(e) ? e.toExponential(2) : String(e));

function normals(seed: number, n: number, std = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * std);
}

const seedOfName = (s: string) => [...s].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 7);

async function read(t: tf.Tensor): Promise<Float32Array> {
  return Float32Array.from((await t.data()) as Float32Array);
}

// ---------------------------------------------------------------------------------------------
// 1. Zoo models: forward, d/d(inputs), d/d(parameters) of a scalar.
// ---------------------------------------------------------------------------------------------

/**
 * The scalar differentiated: Σ_k ⟨out_k, R_k⟩ with fixed seeded normal R_k, not Σ out²: several
 * outputs are unit-norm embeddings (CLIP, idnet), whose Σ out² is constant (gradient ≈ 0).
 */
interface ModelCase {
  name: string;
  /** Differentiable inputs (host values), and inputs that are not differentiated. */
  inputs: Record<string, { shape: number[]; values: Float32Array }>;
  constants?: Record<string, { shape: number[]; values: Float32Array }>;
  forward(p: Params, arch: Record<string, unknown>, x: Record<string, tf.Tensor>): tf.Tensor[];
}

const B = 2;
const IMAGES = { shape: [B, 32, 32, 3], values: renderBatch([face('test', 0), face('test', 1)], 32) };
const LATENTS = { shape: [B, 8, 8, 4], values: normals(11, B * 8 * 8 * 4) };
const TIMES = { shape: [B], values: Float32Array.from([250, 750]) };

const MODEL_CASES: ModelCase[] = [
  {
    name: 'featnet',
    inputs: { x: IMAGES },
    // The training loss too: cross-entropy per head summed with tf.addN over the 9 heads (an AddN
    // of more than 7 inputs, which webgpu's one-program AddN could not bind).
    constants: {
      y: {
        shape: [B, HEADS.length],
        values: Float32Array.from(
          { length: B * HEADS.length },
          (_, i) => (i + Math.floor(i / HEADS.length)) % HEADS[i % HEADS.length].classes,
        ),
      },
    },
    forward(p, a, x) {
      const cfg = configOf('featnet', a);
      const f = featnetFeatures(p, x.x as tf.Tensor4D, cfg);
      return [f, ...featnetLogits(p, f), tf.reshape(featnetLoss(p, x.x as tf.Tensor4D, x.y, cfg), [1])];
    },
  },
  {
    name: 'idnet',
    inputs: { x: IMAGES },
    forward: (p, a, x) => [idnetEmbed(p, x.x as tf.Tensor4D, configOf('idnet', a))],
  },
  {
    name: 'clip',
    inputs: { x: IMAGES },
    constants: {
      ids: {
        shape: [B, MAX_TOKENS],
        values: tokenizeBatch(['a face with white hair', 'a face with black hair and glasses']),
      },
    },
    forward: (p, a, x) => [
      clipImageEmbed(p, x.x as tf.Tensor4D, configOf('clip', a)),
      clipTextEmbed(p, x.ids, configOf('clip', a)),
    ],
  },
  {
    name: 'vae',
    inputs: { x: IMAGES },
    forward(p, a, x) {
      const cfg = configOf('vae', a);
      const { mean, logvar } = vaeEncode(p, x.x as tf.Tensor4D, cfg);
      return [mean, logvar, vaeDecode(p, mean, cfg)];
    },
  },
  {
    name: 'stylegen',
    inputs: { x: IMAGES },
    forward(p, a, x) {
      const cfg = configOf('stylegen', a);
      const { wplus } = styleEncode(p, x.x as tf.Tensor4D, cfg);
      return [wplus, generate(p, wplus, cfg)];
    },
  },
  {
    name: 'ldm',
    inputs: { z: LATENTS, context: { shape: [B, 16, 64], values: normals(12, B * 16 * 64, 0.5) } },
    // Second sample: 6 words then padding (masked keys), as a short caption.
    constants: {
      t: TIMES,
      mask: { shape: [B, 16], values: Float32Array.from({ length: B * 16 }, (_, i) => (i < 16 || i % 16 < 6 ? 1 : 0)) },
    },
    forward: (p, a, x) => [
      condUnet(
        p,
        x.z as tf.Tensor4D,
        x.t as tf.Tensor1D,
        x.context as tf.Tensor3D,
        x.mask as tf.Tensor2D,
        configOf('ldm', a),
      ),
    ],
  },
  {
    name: 'diffae',
    inputs: { x: IMAGES, z: LATENTS },
    constants: { t: TIMES },
    forward(p, a, x) {
      const cfg = configOf('diffae', a);
      const zsem = semanticEncode(p, x.x as tf.Tensor4D, cfg);
      return [zsem, diffaeEps(p, x.z as tf.Tensor4D, x.t as tf.Tensor1D, zsem, cfg)];
    },
  },
];

let variableId = 0;

async function runModel(c: ModelCase, p: Params, arch: Record<string, unknown>): Promise<Outputs> {
  const vars = Object.entries(c.inputs).map(
    ([k, v]) => [k, tf.variable(tf.tensor(v.values, v.shape), true, `conformance${variableId++}/${k}`)] as const,
  );
  const consts = Object.entries(c.constants ?? {}).map(([k, v]) => [k, tf.tensor(v.values, v.shape)] as const);
  const x = Object.fromEntries<tf.Tensor>([...vars, ...consts]);
  let outs: tf.Tensor[] = [];
  const { value, grads } = tf.variableGrads(() => {
    outs = c.forward(p, arch, x).map((o) => tf.keep(o));
    // Pairwise adds, not tf.addN: webgpu's AddN has its own limits (reported separately).
    return outs
      .map((o, k) => tf.sum(tf.mul(o, tf.tensor(normals(seedOfName(c.name) + k, o.size), o.shape))))
      .reduce((s, v) => tf.add(s, v)) as tf.Scalar;
  }, [...vars.map(([, v]) => v), ...p.list()]);
  const result: Outputs = new Map();
  try {
    for (const [k, o] of outs.entries()) result.set(`out${k}`, { kind: 'forward', values: await read(o) });
    for (const [k, v] of vars)
      if (grads[v.name]) result.set(`d/d${k}`, { kind: 'grad', values: await read(grads[v.name]) });
    const prefix = `${p.scope}/`;
    for (const v of p.list())
      if (grads[v.name])
        result.set(`d/dθ ${v.name.slice(prefix.length)}`, { kind: 'grad', values: await read(grads[v.name]) });
  } finally {
    tf.dispose([value, ...outs, ...Object.values(grads), ...vars.map(([, v]) => v), ...consts.map(([, v]) => v)]);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// 2–3. Pipelines on the toyfaces world: DDIM inversion/sampling, the SDS gradient, an HQS scan.
// ---------------------------------------------------------------------------------------------

/**
 * Chains of model evaluations get a looser bound than one forward: DDIM with 5 steps runs the
 * U-Net 10 times under CFG (×7.5 on ε_c − ε_u), the SDS gradient multiplies ε_c − ε_u by the
 * guidance scale 20 (g is a small difference of two large predictions). Measured errors are
 * printed; the bounds are an order of magnitude above the per-kernel errors times that gain.
 */
const CHAIN_TOL = 1e-3;

interface PipelineCase {
  name: string;
  tolerance: { forward: number; grad: number };
  run(world: World): Promise<Outputs>;
}

const PIPELINE_CASES: PipelineCase[] = [
  {
    name: 'DDIM inversion + sampling (5 steps, CFG 7.5, batch 1)',
    tolerance: { forward: CHAIN_TOL, grad: GRAD_TOL },
    async run(world) {
      const d = world.diffusion;
      const scheduler = new DdimScheduler({ ...DDIM_SD, steps: 5 });
      const cond = await d.textCondition([PROMPT.text]);
      const source = await d.textCondition(['a face with black hair']);
      const uncond = await d.textCondition(['']);
      const shape: [number, number, number, number] = [1, ...d.latentShape];
      const z0t = tf.tidy(() => d.encode(tf.tensor4d(IMAGES.values.subarray(0, 32 * 32 * 3), [1, 32, 32, 3])));
      const z0 = await read(z0t);
      z0t.dispose();
      // DDIB-style: inversion under the source prompt without CFG, sampling under the target with CFG.
      const inv = cfgEps(d.eps, source, uncond, 1);
      const smp = cfgEps(d.eps, cond, uncond, 7.5);
      try {
        const zT = await ddimInvert(inv.eps, scheduler, z0, shape);
        const z = await ddimSample(smp.eps, scheduler, zT, shape);
        const xt = tf.tidy(() => d.decode(tf.tensor4d(z, shape)));
        const x = await read(xt);
        xt.dispose();
        return new Map([
          ['z0 = E(x)', { kind: 'forward' as Kind, values: z0 }],
          ['z_T = invert(z0)', { kind: 'forward' as Kind, values: zT }],
          ['z = sample(z_T)', { kind: 'forward' as Kind, values: z }],
          ['D(z)', { kind: 'forward' as Kind, values: x }],
        ]);
      } finally {
        inv.dispose();
        smp.dispose();
      }
    },
  },
  {
    name: 'SDD guidance step (SDS gradient g, and g injected through the VAE encoder; batch 2, t = 500)',
    tolerance: { forward: CHAIN_TOL, grad: CHAIN_TOL },
    async run(world) {
      const d = world.diffusion;
      const cond = await guidanceCondition(d, PROMPT, B);
      const x = tf.tensor4d(IMAGES.values, IMAGES.shape as [number, number, number, number]);
      const noise = tf.tensor4d(normals(21, LATENTS.values.length), LATENTS.shape as [number, number, number, number]);
      const vaeNoise = tf.tensor4d(
        normals(22, LATENTS.values.length),
        LATENTS.shape as [number, number, number, number],
      );
      try {
        const { g, dx } = sdsStep(d, { x, t: 500, cond, noise, vaeNoise });
        const out: Outputs = new Map([
          ['g', { kind: 'forward', values: await read(g) }],
          ['d/dx ⟨g, E(x)⟩', { kind: 'grad', values: await read(dx) }],
        ]);
        tf.dispose([g, dx]);
        return out;
      } finally {
        tf.dispose([cond.context, cond.mask, x, noise, vaeNoise]);
      }
    },
  },
  {
    name: 'HQS scan (K = 2 images, t ∈ {200, 500, 800}, released form)',
    tolerance: { forward: CHAIN_TOL, grad: CHAIN_TOL },
    async run(world) {
      const x = tf.tensor4d(IMAGES.values, IMAGES.shape as [number, number, number, number]);
      try {
        const scan = await hqsScan(
          world,
          x,
          PROMPT,
          [200, 500, 800],
          { guidance: GUIDE, vae_sample: true, top_k_per: 'image' },
          new Rng(5),
        );
        const r = readHqs(scan.stats, 'released', 'paper');
        // N, H are statistics of the image gradient per (t, image); the curve is normalised over t.
        return new Map([
          ['N per (t, image)', { kind: 'grad' as Kind, values: Float64Array.from(scan.stats.N.flat()) }],
          ['H per (t, image)', { kind: 'grad' as Kind, values: Float64Array.from(scan.stats.H.flat()) }],
          ['H_full per (t, image)', { kind: 'grad' as Kind, values: Float64Array.from(scan.stats.H_full.flat()) }],
          ['HQS curve', { kind: 'grad' as Kind, values: Float64Array.from(r.hqs) }],
        ]);
      } finally {
        x.dispose();
      }
    },
  },
];

// ---------------------------------------------------------------------------------------------
// 6. GroupNorm: the composite (non-wasm path) against float64 and against the wasm fused kernel.
// ---------------------------------------------------------------------------------------------

const GN_EPS = 1e-5;
/** An odd shape (groups of 2 channels, 5×3 positions) and a model-like one. */
const GN_SHAPES: Array<{ shape: [number, number, number, number]; groups: number }> = [
  { shape: [2, 5, 3, 6], groups: 3 },
  { shape: [2, 16, 16, 32], groups: 8 },
];

interface GnData {
  x: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
  proj: Float32Array;
}

function gnData(shape: number[], seed: number): GnData {
  const n = shape.reduce((a, b) => a * b);
  const c = shape[3];
  // Offset and scale away from 0/1 so the normalisation does something.
  return {
    x: normals(seed, n, 2).map((v) => v + 0.7),
    gamma: normals(seed + 1, c, 0.3).map((v) => v + 1),
    beta: normals(seed + 2, c, 0.3),
    proj: normals(seed + 3, n),
  };
}

/** y and the gradients of Σ y·proj in float64 on the host. */
function groupNorm64(d: GnData, [b, h, w, c]: number[], groups: number): Outputs {
  const P = h * w;
  const cg = c / groups;
  const n = P * cg;
  const y = new Float64Array(d.x.length);
  const dx = new Float64Array(d.x.length);
  const dgamma = new Float64Array(c);
  const dbeta = new Float64Array(c);
  for (let i = 0; i < b; i++) {
    for (let g = 0; g < groups; g++) {
      const idx: number[] = [];
      for (let p = 0; p < P; p++) for (let k = g * cg; k < (g + 1) * cg; k++) idx.push((i * P + p) * c + k);
      const mu = idx.reduce((s, j) => s + d.x[j], 0) / n;
      const variance = idx.reduce((s, j) => s + (d.x[j] - mu) ** 2, 0) / n;
      const r = 1 / Math.sqrt(variance + GN_EPS);
      let m1 = 0;
      let m2 = 0;
      for (const j of idx) {
        const ch = j % c;
        const xh = (d.x[j] - mu) * r;
        y[j] = xh * d.gamma[ch] + d.beta[ch];
        dbeta[ch] += d.proj[j];
        dgamma[ch] += d.proj[j] * xh;
        const dxh = d.proj[j] * d.gamma[ch];
        m1 += dxh / n;
        m2 += (dxh * xh) / n;
      }
      for (const j of idx) {
        const ch = j % c;
        const xh = (d.x[j] - mu) * r;
        dx[j] = r * (d.proj[j] * d.gamma[ch] - m1 - xh * m2);
      }
    }
  }
  return new Map([
    ['y', { kind: 'forward', values: y }],
    ['dx', { kind: 'grad', values: dx }],
    ['dgamma', { kind: 'grad', values: dgamma }],
    ['dbeta', { kind: 'grad', values: dbeta }],
  ]);
}

/** y and the gradients of Σ y·proj through `op` on the active backend. */
async function groupNormOn(
  op: typeof groupNormComposite,
  d: GnData,
  shape: [number, number, number, number],
  groups: number,
): Promise<Outputs> {
  const x = tf.tensor4d(d.x, shape);
  const gamma = tf.tensor1d(d.gamma);
  const beta = tf.tensor1d(d.beta);
  const proj = tf.tensor4d(d.proj, shape);
  const y = op(x, gamma, beta, groups);
  const [dx, dg, db] = tf.grads((a: tf.Tensor, g: tf.Tensor, bt: tf.Tensor) =>
    tf.sum(tf.mul(op(a as tf.Tensor4D, g, bt, groups), proj)),
  )([x, gamma, beta]);
  try {
    return new Map([
      ['y', { kind: 'forward', values: await read(y) }],
      ['dx', { kind: 'grad', values: await read(dx) }],
      ['dgamma', { kind: 'grad', values: await read(dg) }],
      ['dbeta', { kind: 'grad', values: await read(db) }],
    ]);
  } finally {
    tf.dispose([x, gamma, beta, proj, y, dx, dg, db]);
  }
}

// ---------------------------------------------------------------------------------------------
// Comparison and reporting.
// ---------------------------------------------------------------------------------------------

interface Compared {
  worst: Record<Kind, { error: number; name: string }>;
  lines: string[];
}

/** Per-tensor errors; the worst forward and gradient with their names. */
function compare(got: Outputs, ref: Outputs): Compared {
  const worst: Compared['worst'] = { forward: { error: 0, name: '-' }, grad: { error: 0, name: '-' } };
  const lines: string[] = [];
  const missing = [...ref.keys()].filter((k) => !got.has(k));
  const extra = [...got.keys()].filter((k) => !ref.has(k));
  if (missing.length || extra.length)
    lines.push(`tensors differ: missing ${missing.join(', ') || '-'}; extra ${extra.join(', ') || '-'}`);
  for (const [name, r] of ref) {
    const g = got.get(name);
    const e = g ? relError(g.values, r.values) : Infinity;
    if (e > worst[r.kind].error || worst[r.kind].name === '-') worst[r.kind] = { error: e, name };
  }
  if (missing.length || extra.length) worst.forward = { error: Infinity, name: 'tensor set' };
  return { worst, lines };
}

/**
 * Parameter gradients that vanish in exact arithmetic are rounding noise on both backends, and
 * noise against noise has no relative error: the attention key biases (softmax over keys is
 * invariant to adding the same q·b_k to every logit of a query), and in DiffAE's cross-attention
 * over its single z_sem token the query/key weights and the norm before them (a softmax over one
 * key is 1 whatever the logit: exactly 0 on both backends). A tensor whose wasm gradient is
 * below ZERO_GRAD of the model's largest parameter gradient is checked for staying that small on
 * webgpu instead; every other tensor is compared relative to its own max |value|.
 */
const ZERO_GRAD = 1e-5;

function paramGradErrors(got: Outputs, ref: Outputs) {
  const names = [...ref.keys()].filter((n) => n.startsWith('d/dθ'));
  const absMax = (v: ArrayLike<number>) => {
    let m = 0;
    for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
    return m;
  };
  const scale = Math.max(...names.map((n) => absMax(ref.get(n)!.values)));
  let worst = { error: 0, name: '-' };
  let globalErr = 0;
  let checked = 0;
  const zero: Array<{ name: string; ref: number; got: number }> = [];
  for (const n of names) {
    const r = ref.get(n)!.values;
    const g = got.get(n)?.values;
    if (!g || g.length !== r.length) return { worst: { error: Infinity, name: n }, global: Infinity, checked, zero };
    let d = 0;
    for (let i = 0; i < r.length; i++) d = Math.max(d, Math.abs(g[i] - r[i]));
    globalErr = Math.max(globalErr, Number.isFinite(d) ? d / scale : Infinity);
    const label = n.slice('d/dθ '.length);
    if (absMax(r) < ZERO_GRAD * scale) {
      zero.push({ name: label, ref: absMax(r) / scale, got: absMax(g) / scale });
      continue;
    }
    checked++;
    const e = relError(g, r);
    if (e >= worst.error) worst = { error: e, name: label };
  }
  return { worst, global: globalErr, checked, zero };
}

function maxOf(got: Outputs, ref: Outputs, pick: (name: string) => boolean): { error: number; name: string } {
  let best = { error: 0, name: '-' };
  for (const [name, r] of ref) {
    if (!pick(name)) continue;
    const g = got.get(name);
    const e = g ? relError(g.values, r.values) : Infinity;
    if (e >= best.error) best = { error: e, name };
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Setup: is there an adapter; the cpu check; wasm references; then webgpu.
// ---------------------------------------------------------------------------------------------

const t0 = performance.now();
let skipReason: string | null = null;
let gpuInfo: BackendInfo | null = null;
try {
  gpuInfo = await initBackend('webgpu');
} catch (e) {
  if (!(e instanceof BackendChoiceError)) throw e;
  skipReason = `no WebGPU adapter: ${e.message}`;
  releaseGpu(undefined); // whatever Dawn object the probe made must not keep the process alive
}

// The cpu backend runs the composite too (tfjs-node and cpu have no fused kernel): valid anywhere.
await initBackend('cpu');
const gnCpu: Array<{ label: string; got: Outputs; ref: Outputs }> = [];
for (const [i, { shape, groups }] of GN_SHAPES.entries()) {
  const d = gnData(shape, 100 + i);
  gnCpu.push({
    label: `[${shape}] / ${groups} groups`,
    got: await groupNormOn(groupNormComposite, d, shape, groups),
    ref: groupNorm64(d, shape, groups),
  });
}

type Ref = { outputs: Outputs; seconds: number } | { error: Error; seconds: number };
const modelRefs = new Map<string, Ref>();
const pipelineRefs = new Map<string, Ref>();
const gnWasm: Outputs[] = [];
const loaded = new Map<string, { params: Params; arch: Record<string, unknown> }>();
let world: World | null = null;
let referenceSeconds = 0;

async function timed(f: () => Promise<Outputs>): Promise<Ref> {
  const s = performance.now();
  try {
    return { outputs: await f(), seconds: (performance.now() - s) / 1000 };
  } catch (e) {
    return { error: e as Error, seconds: (performance.now() - s) / 1000 };
  }
}

if (!skipReason) {
  const s = performance.now();
  await initBackend('wasm');
  for (const c of MODEL_CASES) {
    const { card, params } = loadParams(c.name);
    // Loaded stores are frozen (non-trainable); the parameter gradients need them trainable.
    for (const v of params.list()) v.trainable = true;
    loaded.set(c.name, { params, arch: card.architecture });
    modelRefs.set(c.name, await timed(() => runModel(c, params, card.architecture)));
  }
  world = loadToyfacesWorld();
  for (const c of PIPELINE_CASES) pipelineRefs.set(c.name, await timed(() => c.run(world!)));
  for (const [i, { shape, groups }] of GN_SHAPES.entries())
    gnWasm.push(await groupNormOn(groupNormOp, gnData(shape, 100 + i), shape, groups));
  referenceSeconds = (performance.now() - s) / 1000;
  // Everything made so far moves to webgpu on first use (wasm data is readable synchronously).
  gpuInfo = await initBackend('webgpu');
}

after(() => {
  world?.dispose();
  for (const { params } of loaded.values()) params.dispose();
  shutdownBackend();
  console.log(
    `# webgpu conformance: wasm references ${referenceSeconds.toFixed(1)} s, whole file ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
});

interface GpuDevice {
  pushErrorScope(filter: 'validation' | 'out-of-memory' | 'internal'): void;
  popErrorScope(): Promise<{ message: string; constructor: { name: string } } | null>;
}

/**
 * Runs `f` on webgpu inside validation / out-of-memory / internal error scopes: a shader that
 * does not compile (or any other device error) fails this call with Dawn's message.
 */
async function onGpu<T>(f: () => Promise<T>): Promise<T> {
  // tf.backend() is typed KernelBackend; here it is webgpu's, whose `device` is a GPUDevice (typed
  // by @webgpu/types, not a dependency): GpuDevice above declares the two calls made on it.
  const device = (tf.backend() as unknown as { device: GpuDevice }).device;
  const filters = ['validation', 'out-of-memory', 'internal'] as const;
  for (const s of filters) device.pushErrorScope(s);
  let value: T | undefined;
  let failure: unknown = null;
  try {
    value = await f();
  } catch (e) {
    failure = e;
  }
  const errors: string[] = [];
  for (const s of [...filters].reverse()) {
    const err = await device.popErrorScope();
    if (err) errors.push(`${s} (${err.constructor.name}): ${err.message.split('\n').slice(0, 6).join(' | ')}`);
  }
  if (errors.length)
    throw new Error(
      `WebGPU device error(s): ${errors.join(' ;; ')}${failure ? ` (then: ${(failure as Error).message})` : ''}`,
    );
  if (failure) throw failure;
  return value as T;
}

function skipped(t: { skip(reason: string): void; diagnostic(s: string): void }): boolean {
  if (!skipReason) return false;
  t.diagnostic(`skipped: ${skipReason}`);
  t.skip(skipReason);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------------------

test('webgpu adapter in use (vendor, architecture) — or the reason the set is skipped', (t) => {
  if (skipped(t)) return;
  assert.equal(gpuInfo?.choice, 'webgpu');
  assert.equal(tf.getBackend(), 'webgpu');
  const a = gpuInfo!.adapter!;
  t.diagnostic(
    `adapter: vendor=${a.vendor} architecture=${a.architecture} device=${a.device} fallback=${a.isFallbackAdapter}`,
  );
  assert.ok(a.vendor || a.architecture || a.device, 'the adapter describes itself');
});

for (const c of MODEL_CASES) {
  test(`zoo ${c.name}: webgpu vs wasm, forward ≤ ${FORWARD_TOL}, d/dinputs and d/dparams ≤ ${GRAD_TOL} (max rel. error)`, async (t) => {
    if (skipped(t)) return;
    const ref = modelRefs.get(c.name)!;
    if ('error' in ref) throw new Error(`wasm reference failed: ${ref.error.message}`);
    const { params, arch } = loaded.get(c.name)!;
    const s = performance.now();
    const got = await onGpu(() => runModel(c, params, arch));
    const seconds = (performance.now() - s) / 1000;
    const fwd = maxOf(got, ref.outputs, (n) => n.startsWith('out'));
    const dx = maxOf(
      got,
      ref.outputs,
      (n) => n.startsWith('d/dx') || n.startsWith('d/dz') || n.startsWith('d/dcontext'),
    );
    const { lines } = compare(got, ref.outputs);
    const p = paramGradErrors(got, ref.outputs);
    t.diagnostic(
      `${c.name}: forward ${fmt(fwd.error)} (${fwd.name}); d/dinput ${fmt(dx.error)} (${dx.name}); d/dparams over ${p.checked} tensors ${fmt(p.worst.error)} (${p.worst.name}), ` +
        `whole parameter gradient ${fmt(p.global)}; wasm ${ref.seconds.toFixed(1)} s, webgpu ${seconds.toFixed(1)} s`,
    );
    if (p.zero.length)
      t.diagnostic(
        `zero in exact arithmetic (max |grad| / model max on wasm, webgpu): ${p.zero.map((z) => `${z.name} ${fmt(z.ref)}, ${fmt(z.got)}`).join('; ')}`,
      );
    for (const l of lines) t.diagnostic(l);
    assert.deepEqual(
      [...got.keys()].sort(),
      [...ref.outputs.keys()].sort(),
      'the same outputs and gradients on both backends',
    );
    assert.ok(fwd.error <= FORWARD_TOL, `${c.name} forward: ${fmt(fwd.error)} > ${FORWARD_TOL} (${fwd.name})`);
    assert.ok(dx.error <= GRAD_TOL, `${c.name} input gradient: ${fmt(dx.error)} > ${GRAD_TOL} (${dx.name})`);
    assert.ok(
      p.worst.error <= GRAD_TOL,
      `${c.name} parameter gradient: ${fmt(p.worst.error)} > ${GRAD_TOL} (${p.worst.name})`,
    );
    assert.ok(p.global <= GRAD_TOL, `${c.name} whole parameter gradient: ${fmt(p.global)} > ${GRAD_TOL}`);
    for (const z of p.zero)
      assert.ok(
        z.got <= ZERO_GRAD,
        `${c.name} ${z.name}: zero in exact arithmetic, webgpu gives ${fmt(z.got)} of the model's max`,
      );
  });
}

for (const c of PIPELINE_CASES) {
  test(`${c.name}: webgpu vs wasm, values ≤ ${c.tolerance.forward}, gradient statistics ≤ ${c.tolerance.grad}`, async (t) => {
    if (skipped(t)) return;
    const ref = pipelineRefs.get(c.name)!;
    if ('error' in ref) throw new Error(`wasm reference failed: ${ref.error.message}`);
    const s = performance.now();
    const got = await onGpu(() => c.run(world!));
    const seconds = (performance.now() - s) / 1000;
    for (const [name, r] of ref.outputs)
      t.diagnostic(`${name}: ${fmt(relError(got.get(name)?.values ?? [], r.values))} (${r.kind})`);
    t.diagnostic(`wasm ${ref.seconds.toFixed(1)} s, webgpu ${seconds.toFixed(1)} s`);
    const { worst } = compare(got, ref.outputs);
    assert.ok(
      worst.forward.error <= c.tolerance.forward,
      `${worst.forward.name}: ${fmt(worst.forward.error)} > ${c.tolerance.forward}`,
    );
    assert.ok(
      worst.grad.error <= c.tolerance.grad,
      `${worst.grad.name}: ${fmt(worst.grad.error)} > ${c.tolerance.grad}`,
    );
  });
}

test(`groupNormComposite on webgpu: against float64 and against the wasm fused kernel (y ≤ ${FORWARD_TOL}, gradients ≤ ${GRAD_TOL})`, async (t) => {
  if (skipped(t)) return;
  for (const [i, { shape, groups }] of GN_SHAPES.entries()) {
    const d = gnData(shape, 100 + i);
    const got = await onGpu(() => groupNormOn(groupNormComposite, d, shape, groups));
    for (const [label, ref] of [
      ['float64', groupNorm64(d, shape, groups)],
      ['wasm fused', gnWasm[i]],
    ] as const) {
      const { worst } = compare(got, ref);
      t.diagnostic(
        `[${shape}] / ${groups} groups vs ${label}: y ${fmt(worst.forward.error)}; gradients ${fmt(worst.grad.error)} (${worst.grad.name})`,
      );
      assert.ok(worst.forward.error <= FORWARD_TOL, `vs ${label}: y ${fmt(worst.forward.error)}`);
      assert.ok(worst.grad.error <= GRAD_TOL, `vs ${label}: ${worst.grad.name} ${fmt(worst.grad.error)}`);
    }
  }
});

test(`groupNormComposite on the cpu backend against float64 (y ≤ ${FORWARD_TOL}, gradients ≤ ${GRAD_TOL}; needs no adapter)`, (t) => {
  for (const { label, got, ref } of gnCpu) {
    const { worst } = compare(got, ref);
    t.diagnostic(
      `cpu ${label}: y ${fmt(worst.forward.error)}; gradients ${fmt(worst.grad.error)} (${worst.grad.name})`,
    );
    assert.ok(worst.forward.error <= FORWARD_TOL, `${label}: y ${fmt(worst.forward.error)}`);
    assert.ok(worst.grad.error <= GRAD_TOL, `${label}: ${worst.grad.name} ${fmt(worst.grad.error)}`);
  }
});
