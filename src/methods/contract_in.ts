/**
 * The harness's side of the contract's inputs: <run>/contract/in/ with manifest.json (written
 * last: its presence means the inputs are whole), the evaluation sources or their W+ codes, the
 * training images or codes, and the noise streams the method must use instead of its own RNG.
 */
import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { sha256 } from '../util/hash.js';
import { Rng } from '../util/rng.js';
import { worldFiles } from '../world/files.js';
import type { EditPromptSpec, World } from '../world/types.js';
import { evaluationSources } from './editing.js';
import type { TwinInputs } from './types.js';
import {
  CONTRACT_VERSION,
  writeNpyF32,
  type ArrayRef,
  type ContractDirs,
  type EngineBlock,
  type Manifest,
  type NoiseRef,
} from './contract.js';

/** What the inputs depend on (the external method's params; a torch twin's `inputs`). */
export type InputParams = TwinInputs;

/** One stream holds at most this many values (256 MB of float32). */
const MAX_NOISE_VALUES = 2 ** 26;

async function writeArray(
  dirs: ContractDirs,
  file: string,
  t: tf.Tensor | { shape: number[]; data: Float32Array },
): Promise<ArrayRef> {
  const shape = [...t.shape];
  const data = t instanceof tf.Tensor ? ((await t.data()) as Float32Array) : t.data;
  writeNpyF32(join(dirs.in, file), shape, data);
  return { file, shape, dtype: 'float32' };
}

/** The evaluation sources: images (and their W+ codes when the harness inverted them), or the codes alone. */
type SourceRefs = Pick<Manifest['inputs'], 'sources' | 'source_codes'> & { images: Float32Array | null };

async function sourceInputs(
  dirs: ContractDirs,
  world: World,
  prompt: EditPromptSpec,
  p: InputParams,
): Promise<SourceRefs> {
  const s = world.imageSize;
  const m = p.eval_images;
  // A world of codes: the method generates G(w) itself (and returns those originals), so no
  // image is generated here on the harness's engine.
  if (world.codes) {
    const w = world.codes.sources(prompt.id, m);
    try {
      return { sources: null, source_codes: await writeArray(dirs, 'source_codes.npy', w), images: null };
    } finally {
      w.dispose();
    }
  }
  if (p.sources === 'real') {
    const images = world.sources(prompt.id, m);
    return {
      sources: await writeArray(dirs, 'sources.npy', { shape: [m, s, s, 3], data: images }),
      source_codes: null,
      images,
    };
  }
  const { images, w } = await evaluationSources(world, prompt.id, m, p.sources);
  try {
    return {
      sources: await writeArray(dirs, 'sources.npy', { shape: [m, s, s, 3], data: images }),
      source_codes: await writeArray(dirs, 'source_codes.npy', w),
      images,
    };
  } finally {
    w.dispose();
  }
}

async function trainInputs(
  dirs: ContractDirs,
  world: World,
  n: number,
): Promise<Pick<Manifest['inputs'], 'train' | 'train_codes'>> {
  if (n === 0) return { train: null, train_codes: null };
  if (world.codes) {
    const w = world.codes.train(n);
    try {
      return { train: null, train_codes: await writeArray(dirs, 'train_codes.npy', w) };
    } finally {
      w.dispose();
    }
  }
  const s = world.imageSize;
  return {
    train: await writeArray(dirs, 'train.npy', { shape: [n, s, s, 3], data: world.trainImages(n) }),
    train_codes: null,
  };
}

/** Each stream: standard normal draws of our Rng under its own seed, so a port of src/util/rng.ts reproduces it. */
function noiseInputs(dirs: ContractDirs, seed: number, p: InputParams): Record<string, NoiseRef> {
  const out: Record<string, NoiseRef> = {};
  for (const [name, dims] of Object.entries(p.noise)) {
    const shape = dims.map((d) => (d === 'm' ? p.eval_images : d === 'n' ? p.train_images : d));
    const count = shape.reduce((a, b) => a * b, 1);
    if (count > MAX_NOISE_VALUES)
      throw new UserError(`method.params.noise.${name}: ${count} values, at most ${MAX_NOISE_VALUES}`);
    const rngSeed = parseInt(sha256(`${seed}:contract:${name}`).slice(0, 8), 16);
    const rng = new Rng(rngSeed);
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = rng.normal();
    const file = `noise_${name}.npy`;
    writeNpyF32(join(dirs.in, file), shape, data);
    out[name] = { file, shape, dtype: 'float32', rng_seed: rngSeed };
  }
  return out;
}

/** Writes every input, then manifest.json; returns the manifest and the source images (null in a world of codes). */
export async function writeInputs(
  dirs: ContractDirs,
  run: { id: string; seed: number; method: string; params: object },
  world: World,
  prompt: EditPromptSpec,
  p: InputParams,
  engine?: EngineBlock,
): Promise<{ manifest: Manifest; sources: Float32Array | null }> {
  const s = world.imageSize;
  const m = p.eval_images;
  const { images, ...sourceRefs } = await sourceInputs(dirs, world, prompt, p);
  const manifest: Manifest = {
    contract: CONTRACT_VERSION,
    method: run.method,
    run_id: run.id,
    seed: run.seed,
    params: { ...run.params } as Record<string, unknown>,
    world: {
      name: world.name,
      image_size: s,
      files: worldFiles(),
      fingerprint: world.fingerprint,
      wplus: world.style ? { levels: world.style.levels, dim: world.style.dim } : null,
      from_codes: world.codes !== undefined,
    },
    // Token ids where the world brings its tokenizer (WorldContract); the texts are exact either way.
    prompt: {
      id: prompt.id,
      text: prompt.text,
      source_text: prompt.sourceText,
      attribute: prompt.attribute,
      source: prompt.source,
      target: prompt.target,
      group: prompt.group,
      token_ids: world.contract?.tokenize([prompt.text])[0] ?? null,
    },
    inputs: {
      ...sourceRefs,
      ...(await trainInputs(dirs, world, p.train_images)),
      noise: noiseInputs(dirs, run.seed, p),
    },
    outputs: {
      edited: { file: 'edited.npy', shape: [m, s, s, 3], dtype: 'float32' },
      originals: world.codes ? { file: 'originals.npy', shape: [m, s, s, 3], dtype: 'float32' } : null,
    },
    ...(engine ? { engine } : {}),
  };
  writeJsonAtomic(join(dirs.in, 'manifest.json'), manifest);
  return { manifest, sources: images };
}
