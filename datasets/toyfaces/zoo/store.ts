/**
 * Shipped model weights and their cards: datasets/toyfaces/zoo/<name>/{weights.safetensors,
 * card.json}. The card records architecture, training setup, the SHA-256 of the weights and the
 * numbers `sdd zoo eval` must reproduce. Loading checks presence and hash before parsing, and
 * that the file holds exactly the model's tensors (strictParams).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Params } from '../../../src/nn/params.js';
import { PROJECT_ROOT } from '../../../src/util/env.js';
import { UserError } from '../../../src/errors.js';
import { sha256 } from '../../../src/util/hash.js';
import { writeJsonAtomic } from '../../../src/util/atomic.js';
import {
  asFloat32,
  f16,
  parseSafetensors,
  readSafetensors,
  writeSafetensors,
  type StTensor,
} from '../../../src/util/safetensors.js';
import { verifyModel } from './trace.js';

/** SDD_ZOO_DIR redirects reads and writes (smoke tests train into a temp folder). */
export const ZOO_DIR = process.env.SDD_ZOO_DIR ?? join(PROJECT_ROOT, 'datasets', 'toyfaces', 'zoo');

export interface ModelCard {
  name: string;
  role: string;
  version: number;
  architecture: Record<string, unknown>;
  training: Record<string, unknown>;
  weights: { file: string; sha256: string; bytes: number; dtype: 'F16' | 'F32'; params: number };
  metrics: Record<string, unknown>;
  created_at: string;
  git: { sha: string | null; dirty: boolean | null };
}

export function modelDir(name: string, dir = ZOO_DIR): string {
  return join(dir, name);
}

const rel = (p: string) => relative(process.cwd(), p) || p;

export function readCard(name: string, dir = ZOO_DIR): ModelCard {
  const path = join(modelDir(name, dir), 'card.json');
  if (!existsSync(path))
    throw new UserError(`${rel(path)}: missing — model '${name}' is not in the zoo (sdd zoo train ${name})`);
  let card: unknown;
  try {
    card = JSON.parse(readFileSync(path, 'utf-8'));
  } catch (e) {
    throw new UserError(`${rel(path)}: not a model card (${(e as Error).message.split('\n')[0]})`);
  }
  const c = card as Partial<ModelCard> | null;
  const w = c?.weights;
  const ok =
    typeof c?.architecture === 'object' &&
    c.architecture !== null &&
    typeof w?.file === 'string' &&
    typeof w.sha256 === 'string' &&
    typeof w.bytes === 'number';
  if (!ok) throw new UserError(`${rel(path)}: not a model card (needs architecture and weights.file, .sha256, .bytes)`);
  return card as ModelCard;
}

/** Reads and checks the weights of `name`; throws a one-line UserError on any problem. */
export function readWeights(name: string, dir = ZOO_DIR): { card: ModelCard; tensors: Map<string, StTensor> } {
  const card = readCard(name, dir);
  const path = join(modelDir(name, dir), card.weights.file);
  if (!existsSync(path) || !statSync(path).isFile())
    throw new UserError(`${rel(path)}: missing (card.json expects it; sdd zoo train ${name})`);
  const buf = readFileSync(path);
  const digest = sha256(buf);
  if (buf.byteLength !== card.weights.bytes || digest !== card.weights.sha256) {
    throw new UserError(
      `${rel(path)}: corrupt or truncated (${buf.byteLength} bytes, sha256 ${digest.slice(0, 12)}…; card expects ${card.weights.bytes} bytes, ${card.weights.sha256.slice(0, 12)}…)`,
    );
  }
  return { card, tensors: parseSafetensors(buf, rel(path)).tensors };
}

/**
 * A strict store of model `name` from a file's tensors: it never creates a parameter, and one
 * forward of the model (zoo/trace.ts) checks that the file holds exactly the model's tensors, in
 * its shapes. Throws one ParamsError line naming the file otherwise.
 */
function strictParams(
  name: string,
  file: string,
  tensors: Map<string, StTensor>,
  architecture: Record<string, unknown>,
): Params {
  const params = Params.loaded(
    file,
    [...tensors].map(([k, t]) => [k, { shape: t.shape, values: asFloat32(t) }] as const),
  );
  try {
    verifyModel(name, params, architecture);
  } catch (e) {
    params.dispose();
    throw e;
  }
  return params;
}

/** Loads a shipped model's weights into a strict Params store (names as in the model code). */
export function loadParams(name: string, dir = ZOO_DIR): { card: ModelCard; params: Params } {
  const { card, tensors } = readWeights(name, dir);
  return {
    card,
    params: strictParams(name, rel(join(modelDir(name, dir), card.weights.file)), tensors, card.architecture),
  };
}

/**
 * Model `name` from any safetensors file (a candidate checkpoint), checked against the
 * architecture of the shipped card: a one-line UserError if the file is unreadable or does not fit.
 */
export function loadParamsFile(name: string, file: string): Params {
  const { tensors } = readSafetensors(file);
  return strictParams(name, file, tensors, readCard(name).architecture);
}

const frozen = new Map<string, FrozenModel>();

export interface FrozenModel {
  sha256: string;
  architecture: Record<string, unknown>;
  params: Params;
}

/**
 * A shipped model held for the life of the process, for losses that run a frozen network (a
 * perceptual term): training workers rebuild losses from a config, so they load it themselves,
 * once, instead of receiving it with every step. Variables are non-trainable.
 */
export function frozenParams(name: string): FrozenModel {
  let got = frozen.get(name);
  if (!got) {
    const { card, params } = loadParams(name);
    got = { sha256: card.weights.sha256, architecture: card.architecture, params };
    frozen.set(name, got);
  }
  return got;
}

export async function saveModel(
  name: string,
  params: Params,
  card: Omit<ModelCard, 'weights' | 'name'>,
  dtype: 'F16' | 'F32' = 'F16',
): Promise<ModelCard> {
  const tensors = new Map<string, StTensor>();
  for (const [pname, v] of params.vars) {
    const values = (await v.data()) as Float32Array;
    // F32: a copy of exactly the tensor's bytes (a read may hand back a view into a larger buffer).
    tensors.set(
      pname,
      dtype === 'F16'
        ? f16(v.shape, values)
        : {
            dtype: 'F32',
            shape: v.shape,
            data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice(),
          },
    );
  }
  const file = 'weights.safetensors';
  const path = join(modelDir(name), file);
  writeSafetensors(path, tensors, { model: name });
  const buf = readFileSync(path);
  const full: ModelCard = {
    name,
    ...card,
    weights: { file, sha256: sha256(buf), bytes: statSync(path).size, dtype, params: params.count() },
  };
  writeJsonAtomic(join(modelDir(name), 'card.json'), full);
  return full;
}

export function zooModels(): string[] {
  if (!existsSync(ZOO_DIR)) return [];
  return readdirSync(ZOO_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(ZOO_DIR, d.name, 'card.json')))
    .map((d) => d.name)
    .sort();
}
