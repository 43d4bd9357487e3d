/**
 * Picks the compute backend: tfjs-node-gpu → tfjs-node → wasm → cpu, unless overridden with
 * `--backend` / SDD_BACKEND. Algorithms never ask which one they got; only doctor and env.json do.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node bundle ships ops without their gradients; the union package's bundle registers
// them (and tf.layers) on the same, deduplicated tfjs-core instance.
import '@tensorflow/tfjs';
import { registerReplacementKernels } from './kernels/register.js';

export const BACKEND_CHOICES = ['auto', 'node-gpu', 'node', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface BackendAttempt {
  choice: Exclude<BackendChoice, 'auto'>;
  ok: boolean;
  reason?: string;
}

export interface BackendInfo {
  /** What was chosen, as named on the command line. */
  choice: Exclude<BackendChoice, 'auto'>;
  /** tfjs's name for the active backend ('tensorflow', 'wasm', 'cpu'). */
  tfName: string;
  simd: boolean | null;
  threads: boolean | null;
  replacedKernels: boolean;
  attempts: BackendAttempt[];
  tfjsVersion: string;
}

const ORDER: Array<Exclude<BackendChoice, 'auto'>> = ['node-gpu', 'node', 'wasm', 'cpu'];

let active: BackendInfo | null = null;

export function parseBackendChoice(v: string | undefined, source: string): BackendChoice {
  const value = (v ?? 'auto').trim();
  if ((BACKEND_CHOICES as readonly string[]).includes(value)) return value as BackendChoice;
  throw new BackendChoiceError(`${source}: unknown backend '${value}' (expected one of ${BACKEND_CHOICES.join(', ')})`);
}

export class BackendChoiceError extends Error {}

/** Guarded dynamic import: the tfjs-node packages are optional and fail to install without network. */
async function tryNode(pkg: string): Promise<string | null> {
  try {
    await import(pkg);
    return null;
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    return (e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' ? `${pkg} is not installed` : msg;
  }
}

async function activate(choice: Exclude<BackendChoice, 'auto'>): Promise<string | null> {
  switch (choice) {
    case 'node-gpu':
    case 'node': {
      const err = await tryNode(choice === 'node-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node');
      if (err) return err;
      return (await tf.setBackend('tensorflow')) ? null : 'tfjs-node loaded but its backend failed to start';
    }
    case 'wasm': {
      await import('@tensorflow/tfjs-backend-wasm');
      // cpu stays registered beside wasm: the delegated kernels and the kernel tests need it.
      await import('@tensorflow/tfjs-backend-cpu');
      registerReplacementKernels('wasm');
      return (await tf.setBackend('wasm')) ? null : 'the wasm backend failed to initialise';
    }
    case 'cpu':
      await import('@tensorflow/tfjs-backend-cpu');
      return (await tf.setBackend('cpu')) ? null : 'the cpu backend failed to initialise';
  }
}

let pending: { requested: BackendChoice; promise: Promise<BackendInfo> } | null = null;

/**
 * Initialises the backend once per process (or worker thread) and returns what was chosen.
 * Concurrent callers share one initialisation: two overlapping setBackend calls break wasm.
 */
export async function initBackend(requested: BackendChoice = 'auto'): Promise<BackendInfo> {
  if (active && (requested === 'auto' || requested === active.choice)) return active;
  if (pending && (requested === 'auto' || requested === pending.requested)) return pending.promise;
  const promise = initOnce(requested);
  pending = { requested, promise };
  try {
    return await promise;
  } finally {
    pending = null;
  }
}

async function initOnce(requested: BackendChoice): Promise<BackendInfo> {
  const candidates = requested === 'auto' ? ORDER : [requested];
  const attempts: BackendAttempt[] = [];
  // tfjs logs a warning for every failed setBackend; our attempts list already carries the reason.
  const warn = console.warn;
  console.warn = () => {};
  try {
    for (const choice of candidates) {
      const reason = await activate(choice);
      attempts.push(reason ? { choice, ok: false, reason } : { choice, ok: true });
      if (!reason) {
        await tf.ready();
        active = describe(choice, attempts);
        return active;
      }
    }
  } finally {
    console.warn = warn;
  }
  const why = attempts.map((a) => `${a.choice}: ${a.reason}`).join('; ');
  throw new BackendChoiceError(`no compute backend could start (${why})`);
}

function describe(choice: Exclude<BackendChoice, 'auto'>, attempts: BackendAttempt[]): BackendInfo {
  const isWasm = choice === 'wasm';
  return {
    choice,
    tfName: tf.getBackend(),
    simd: isWasm ? tf.env().getBool('WASM_HAS_SIMD_SUPPORT') : null,
    threads: isWasm ? tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') : null,
    replacedKernels: isWasm,
    attempts,
    tfjsVersion: tf.version_core,
  };
}

export function activeBackend(): BackendInfo | null {
  return active;
}

/** SDD_BACKEND, else auto. */
export function backendFromEnv(): BackendChoice {
  return parseBackendChoice(process.env.SDD_BACKEND, 'SDD_BACKEND');
}

/** A `--backend` flag when given, else SDD_BACKEND, else auto; errors name whichever was read. */
export function backendChoice(flag: string | undefined): BackendChoice {
  return flag === undefined ? backendFromEnv() : parseBackendChoice(flag, '--backend');
}
