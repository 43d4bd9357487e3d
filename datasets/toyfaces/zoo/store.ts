/**
 * Shipped model weights and their cards: datasets/toyfaces/zoo/<name>/{weights.safetensors,
 * card.json}. The card records architecture, training setup, the SHA-256 of the weights and the
 * numbers `sdd zoo eval` must reproduce. Loading checks presence and hash before parsing.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Params } from '../../../src/nn/params.js';
import { PROJECT_ROOT } from '../../../src/runs/env.js';
import { UserError } from '../../../src/errors.js';
import { sha256 } from '../../../src/util/hash.js';
import { writeJsonAtomic } from '../../../src/util/atomic.js';
import { asFloat32, f16, parseSafetensors, writeSafetensors, type StTensor } from '../../../src/util/safetensors.js';

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

export function modelDir(name: string): string {
  return join(ZOO_DIR, name);
}

const rel = (p: string) => relative(process.cwd(), p) || p;

export function readCard(name: string): ModelCard {
  const path = join(modelDir(name), 'card.json');
  if (!existsSync(path)) throw new UserError(`${rel(path)}: missing — model '${name}' is not in the zoo (sdd zoo train ${name})`);
  return JSON.parse(readFileSync(path, 'utf-8')) as ModelCard;
}

/** Reads and checks the weights of `name`; throws a one-line UserError on any problem. */
export function readWeights(name: string): { card: ModelCard; tensors: Map<string, StTensor> } {
  const card = readCard(name);
  const path = join(modelDir(name), card.weights.file);
  if (!existsSync(path)) throw new UserError(`${rel(path)}: missing (card.json expects it; sdd zoo train ${name})`);
  const buf = readFileSync(path);
  const digest = sha256(buf);
  if (buf.byteLength !== card.weights.bytes || digest !== card.weights.sha256) {
    throw new UserError(
      `${rel(path)}: corrupt or truncated (${buf.byteLength} bytes, sha256 ${digest.slice(0, 12)}…; card expects ${card.weights.bytes} bytes, ${card.weights.sha256.slice(0, 12)}…)`,
    );
  }
  try {
    return { card, tensors: parseSafetensors(buf, rel(path)).tensors };
  } catch (e) {
    throw new UserError((e as Error).message);
  }
}

/** Loads weights into a fresh Params store (names as in the model code). */
export function loadParams(name: string, seed = 0): { card: ModelCard; params: Params } {
  const { card, tensors } = readWeights(name);
  const params = new Params(seed);
  for (const [pname, t] of tensors) {
    const v = tf.tensor(asFloat32(t), t.shape);
    params.vars.set(pname, tf.variable(v, false, `${params.scope}/${pname}`));
    v.dispose();
  }
  return { card, params };
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

export function saveModel(name: string, params: Params, card: Omit<ModelCard, 'weights' | 'name'>, dtype: 'F16' | 'F32' = 'F16'): ModelCard {
  const tensors = new Map<string, StTensor>();
  for (const [pname, v] of params.vars) {
    const values = v.dataSync() as Float32Array;
    tensors.set(pname, dtype === 'F16' ? f16(v.shape, values) : { dtype: 'F32', shape: v.shape, data: new Uint8Array(values.buffer.slice(0)) });
  }
  const file = 'weights.safetensors';
  const path = join(modelDir(name), file);
  writeSafetensors(path, tensors, { model: name });
  const buf = readFileSync(path);
  const full: ModelCard = { name, ...card, weights: { file, sha256: sha256(buf), bytes: statSync(path).size, dtype, params: params.count() } };
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
