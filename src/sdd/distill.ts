/**
 * Selective distillation (Alg. 1): a latent mapper M trained so that G(w + step·M(w)) follows the
 * diffusion model's guidance for one prompt, with t drawn uniformly from the selected set S at
 * every iteration. Loss = SDS guidance (injected at the diffusion latent) + λ_L2·MSE(w, w′)
 * + λ_ID·(1 − cos(ID(G(w′)), ID(G(w)))): the ID term compares the edited image with the unedited
 * one (the released code passes the original twice, making the term a no-op; noted in the README).
 * Optimiser: AdamW on the mapper only; everything else frozen.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createAdam, type AdamOptimizer } from '../nn/adam.js';
import { Params } from '../nn/params.js';
import { tfSeed, type Rng } from '../util/rng.js';
import { worldPart, type World } from '../world/types.js';
import { NonFiniteError } from '../errors.js';
import type { Calibration } from '../util/calibration.js';
import { guidanceCondition, sdsInjection, type GuidancePrompt, type GuidanceSettings } from './guidance.js';
import { applyMapper, levelsMapper, type MapperSettings } from './mapper.js';

export interface DistillSettings extends MapperTrainSettings {
  /** Latents as a posterior sample (SD's .sample(), the code's choice) or the mean. */
  vae_sample: boolean;
  guidance: GuidanceSettings;
}

export interface DistillState {
  step: number;
  tensors: Map<string, Float32Array>;
  adamStep: number;
}

export interface DistillHooks {
  resume?: DistillState | null;
  onStep?(step: number, scalars: Record<string, number>): void;
  checkpoint?(state: DistillState): void;
  checkpointEvery?: number;
  signal?: AbortSignal;
  /** τ_train's calibration (../util/calibration.ts): brackets every iteration; the caller releases it. */
  calibration?: Calibration;
  /**
   * The Gaussian draws of iteration `step` from outside, instead of tf.randomNormal under the
   * step's seeds: only the torch twin's parity test sets it (the harness's noise streams, which
   * the twin uses). Called inside the step's tidy; unset, a run is what it always was.
   */
  noise?: (step: number) => { sds: tf.Tensor4D; vae: tf.Tensor4D };
}

/** Mapper parameters, created for W+ of this world (seeded init). */
export function createMapper(world: World, s: MapperSettings, seed: number): Params {
  const p = new Params(seed);
  const style = worldPart(world, 'style', 'the SDD mapper');
  tf.tidy(() => void levelsMapper(p, tf.zeros([1, style.levels, style.dim]) as tf.Tensor3D, style, s));
  return p;
}

async function stateOf(p: Params, opt: AdamOptimizer, step: number): Promise<DistillState> {
  const tensors = new Map<string, Float32Array>();
  const st = await opt.getState();
  for (const [name, v] of p.vars) {
    tensors.set(`p/${name}`, ((await v.data()) as Float32Array).slice());
    const m = st.m.get(v.name);
    const vv = st.v.get(v.name);
    if (m && vv) {
      tensors.set(`m/${name}`, m.slice());
      tensors.set(`v/${name}`, vv.slice());
    }
  }
  return { step, tensors, adamStep: st.step };
}

function restore(p: Params, opt: AdamOptimizer, s: DistillState): void {
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  for (const [name, variable] of p.vars) {
    const w = s.tensors.get(`p/${name}`);
    if (!w) throw new Error(`checkpoint lacks mapper parameter ${name}`);
    variable.assign(tf.tensor(w, variable.shape));
    const mm = s.tensors.get(`m/${name}`);
    const vv = s.tensors.get(`v/${name}`);
    if (mm && vv) {
      m.set(variable.name, mm);
      v.set(variable.name, vv);
    }
  }
  opt.setState({ step: s.adamStep, m, v });
}

/** The guidance term of one iteration: a loss on the edited images (x2) given the originals (x). */
export interface GuidanceTerm {
  /** `original()` renders the unedited images on demand: SDS never needs them, StyleCLIP does. */
  loss(edited: tf.Tensor4D, original: () => tf.Tensor4D): tf.Scalar;
  /** Per-step values to log (e.g. the sampled t). */
  scalars: Record<string, number>;
}

/** The guidance term of iteration `step`, its draws from the step's rng (after the batch's). */
export type GuidanceAt = (rng: Rng, step: number) => GuidanceTerm;

/** Mapper-training settings shared by SDD and StyleCLIP (the guidance term differs). */
export interface MapperTrainSettings {
  iterations: number;
  batch: number;
  lr: number;
  weight_decay: number;
  lambda_l2: number;
  lambda_id: number;
  mapper: MapperSettings;
}

/**
 * The latent-mapper training loop: w' = w + step·M(w), loss = guidance + λ_L2·MSE(w, w′) +
 * λ_ID·(1 − cos(ID(G(w′)), ID(G(w)))), AdamW on the mapper. Every draw (batch, and whatever the
 * guidance draws) comes from `rngAt(step)`, so a resumed run replays the same sequence.
 */
export async function trainMapper(
  world: World,
  mapper: Params,
  trainW: tf.Tensor3D,
  s: MapperTrainSettings,
  guidanceAt: GuidanceAt,
  rngAt: (step: number) => Rng,
  hooks: DistillHooks = {},
): Promise<{ steps: number }> {
  const opt = createAdam({ lr: s.lr, weightDecay: s.weight_decay });
  let start = 0;
  if (hooks.resume) {
    restore(mapper, opt, hooks.resume);
    start = hooks.resume.step;
  }
  const vars = mapper.list();
  // ID(G(w)) of every training code, once: it never changes, and recomputing it cost a generator
  // and an identity forward per iteration. Chunked, so memory stays bounded at any image size.
  const idOriginals = identityOf(world, trainW);
  try {
    return await mapperLoop(world, mapper, trainW, idOriginals, s, opt, vars, start, guidanceAt, rngAt, hooks);
  } finally {
    idOriginals.dispose();
    opt.dispose();
  }
}

const ID_CHUNK = 32;

function identityOf(world: World, trainW: tf.Tensor3D): tf.Tensor2D {
  const parts: tf.Tensor2D[] = [];
  const [identity, style] = [worldPart(world, 'identity', "SDD's ID loss"), worldPart(world, 'style', 'SDD')];
  for (let i = 0; i < trainW.shape[0]; i += ID_CHUNK) {
    const size = Math.min(ID_CHUNK, trainW.shape[0] - i);
    parts.push(
      tf.tidy(() => identity.embed(style.generate(tf.slice(trainW, [i, 0, 0], [size, -1, -1]) as tf.Tensor3D))),
    );
  }
  const all = tf.concat(parts) as tf.Tensor2D;
  tf.dispose(parts);
  return all;
}

async function mapperLoop(
  world: World,
  mapper: Params,
  trainW: tf.Tensor3D,
  idOriginals: tf.Tensor2D,
  s: MapperTrainSettings,
  opt: AdamOptimizer,
  vars: tf.Variable[],
  start: number,
  guidanceAt: GuidanceAt,
  rngAt: (step: number) => Rng,
  hooks: DistillHooks,
): Promise<{ steps: number }> {
  const n = trainW.shape[0];
  const [style, identity] = [worldPart(world, 'style', 'SDD'), worldPart(world, 'identity', "SDD's ID loss")];
  const log = new ScalarLog(hooks.onStep, s.lr);
  for (let step = start; step < s.iterations; step++) {
    if (hooks.signal?.aborted) throw new Error('interrupted');
    await hooks.calibration?.begin();
    const rng = rngAt(step);
    const idx = Array.from({ length: s.batch }, () => rng.int(n));
    const guidance = guidanceAt(rng, step);
    let values: tf.Tensor1D | null = null;
    const grads = tf.tidy(() => {
      const w = tf.gather(trainW, idx) as tf.Tensor3D;
      const idOrig = tf.gather(idOriginals, idx);
      const parts: tf.Tensor[] = [];
      const { value, grads } = tf.variableGrads(() => {
        const w2 = applyMapper(mapper, w, style, s.mapper);
        const x2 = style.generate(w2);
        const g = guidance.loss(x2, () => style.generate(w));
        const l2 = tf.mean(tf.square(tf.sub(w2, w)));
        const id = tf.sub(1, tf.mean(tf.sum(tf.mul(identity.embed(x2), idOrig), 1)));
        parts.push(tf.keep(l2), tf.keep(id), tf.keep(g));
        return tf.add(g, tf.add(tf.mul(l2, s.lambda_l2), tf.mul(id, s.lambda_id))) as tf.Scalar;
      }, vars);
      values = tf.keep(tf.stack([value, ...parts]) as tf.Tensor1D);
      tf.dispose(parts);
      return grads;
    });
    // The scalars stay on the device; the log reads LOG_EVERY steps' worth at once.
    log.push(step, guidance.scalars, values!);
    await log.flushIf(false, grads);
    await opt.apply(vars, grads);
    tf.dispose(grads);
    // A timed iteration ends when the device has applied the update (a read of one variable waits for it).
    await hooks.calibration?.end(() => vars[0].data());
    const every = hooks.checkpointEvery ?? 0;
    if (every > 0 && (step + 1) % every === 0 && step + 1 < s.iterations) {
      await log.flushIf(true); // a checkpoint never holds a state the NaN check has not seen
      hooks.checkpoint?.(await stateOf(mapper, opt, step + 1));
    }
    await new Promise((r) => setImmediate(r)); // let IPC and signals through
  }
  await log.flushIf(true);
  return { steps: s.iterations };
}

/** Steps whose losses are read together: one device → host transfer per LOG_EVERY iterations. */
export const LOG_EVERY = 10;
const SCALAR_NAMES = ['loss', 'l2', 'id_loss', 'guidance'] as const;

/**
 * The per-step scalars of the mapper loop, held on the device and read every LOG_EVERY steps
 * (and before checkpoints and at the end): logging and the NaN/Inf check see every step, in order.
 * A non-finite value stops the run naming the first step it appeared at.
 */
class ScalarLog {
  private pending: Array<{ step: number; host: Record<string, number>; values: tf.Tensor1D }> = [];

  constructor(
    private readonly onStep: DistillHooks['onStep'],
    private readonly lr: number,
  ) {}

  push(step: number, host: Record<string, number>, values: tf.Tensor1D): void {
    this.pending.push({ step, host, values });
  }

  /** Reads and reports the pending steps when due (or forced); throws NonFiniteError on NaN/Inf. */
  async flushIf(force: boolean, grads?: tf.NamedTensorMap): Promise<void> {
    if (this.pending.length === 0 || (!force && this.pending.length < LOG_EVERY)) return;
    const batch = this.pending;
    this.pending = [];
    const all = tf.stack(batch.map((p) => p.values));
    const v = await all.data();
    tf.dispose([all, ...batch.map((p) => p.values)]);
    for (const [i, p] of batch.entries()) {
      const scalars: Record<string, number> = { ...p.host };
      SCALAR_NAMES.forEach((name, k) => (scalars[name] = v[i * SCALAR_NAMES.length + k]));
      const bad = Object.entries(scalars).find(([, x]) => !Number.isFinite(x));
      if (bad) {
        if (grads) tf.dispose(grads);
        throw new NonFiniteError(`${bad[0]} is ${bad[1]} at iteration ${p.step} (lr ${this.lr})`);
      }
      this.onStep?.(p.step, scalars);
    }
  }
}

/**
 * SDD's distillation: the guidance term is SDS at t drawn uniformly from `timesteps` (the
 * selected S), injected at the diffusion latent of the edited image. Its logged value is ⟨g, z⟩,
 * not a meaningful loss.
 */
export async function distill(
  world: World,
  mapper: Params,
  trainW: tf.Tensor3D,
  prompt: GuidancePrompt,
  timesteps: number[],
  s: DistillSettings,
  rngAt: (step: number) => Rng,
  hooks: DistillHooks = {},
): Promise<{ steps: number }> {
  const cond = await guidanceCondition(world.diffusion, prompt, s.batch);
  try {
    return await trainMapper(
      world,
      mapper,
      trainW,
      s,
      (rng, step) => {
        const t = timesteps[rng.int(timesteps.length)];
        const seeds = [rng.int(2 ** 31), rng.int(2 ** 31)];
        return {
          scalars: { t },
          loss: (x2) => {
            const injected = hooks.noise?.(step);
            const noise =
              injected?.sds ??
              (tf.randomNormal(
                [s.batch, ...world.diffusion.latentShape],
                0,
                1,
                'float32',
                tfSeed(seeds[0]),
              ) as tf.Tensor4D);
            const vaeNoise = s.vae_sample
              ? (injected?.vae ??
                (tf.randomNormal(
                  [s.batch, ...world.diffusion.latentShape],
                  0,
                  1,
                  'float32',
                  tfSeed(seeds[1]),
                ) as tf.Tensor4D))
              : undefined;
            return sdsInjection(world.diffusion, t, cond, noise, s.guidance)(world.diffusion.encode(x2, vaeNoise));
          },
        };
      },
      rngAt,
      hooks,
    );
  } finally {
    tf.dispose([cond.context, cond.mask]);
  }
}

/** Edited images for W+ latents (one generator forward with the mapper). */
export function editLatents(world: World, mapper: Params, w: tf.Tensor3D, s: MapperSettings): tf.Tensor4D {
  const style = worldPart(world, 'style', 'SDD');
  return tf.tidy(() => tf.clipByValue(style.generate(applyMapper(mapper, w, style, s)), 0, 1) as tf.Tensor4D);
}
