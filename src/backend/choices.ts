/**
 * The compute backends, in auto-selection order, and what can be known of them without starting
 * one. tfjs-free: the experiment schema, the CLI's flags, the Slurm executor and `make bundle` read
 * these facts without loading tfjs (0.5–0.9 s) or touching a device. A new backend is one file in
 * backends/ plus its line in backends/index.ts.
 */
import { gpuDeviceNode } from './webgpu.js';
import type { BackendDef } from './backends/types.js';
import * as defs from './backends/index.js';

type Def = (typeof defs)[keyof typeof defs];
export type BackendName = Def['name'];

/** Auto-selection order: the first that starts wins. */
export const BACKENDS: readonly Def[] = Object.values(defs).sort((a, b) => a.autoRank - b.autoRank);

export type BackendChoice = 'auto' | BackendName;
export const BACKEND_CHOICES: readonly [BackendChoice, ...BackendChoice[]] = ['auto', ...BACKENDS.map((b) => b.name)];
// Every export of backends/index.ts must be a backend (the list above takes them all).
const _allBackends: readonly BackendDef<BackendName>[] = BACKENDS;
void _allBackends;

export class BackendChoiceError extends Error {}

export function backendDef(name: BackendName): BackendDef<BackendName> {
  const b = BACKENDS.find((d) => d.name === name);
  if (!b) throw new BackendChoiceError(`unknown backend '${name}' (expected one of ${BACKEND_CHOICES.join(', ')})`);
  return b;
}

/** The facts of the backend tfjs calls `tfName` (worker threads know only that name). */
export function backendByTfName(tfName: string): BackendDef<BackendName> | undefined {
  return BACKENDS.find((d) => d.tfName === tfName);
}

export function parseBackendChoice(v: string | undefined, source: string): BackendChoice {
  const value = (v ?? 'auto').trim();
  const known = BACKEND_CHOICES.find((c) => c === value);
  if (known) return known;
  throw new BackendChoiceError(`${source}: unknown backend '${value}' (expected one of ${BACKEND_CHOICES.join(', ')})`);
}

/** SDD_BACKEND, else auto. */
export function backendFromEnv(): BackendChoice {
  return parseBackendChoice(process.env.SDD_BACKEND, 'SDD_BACKEND');
}

/** A `--backend` flag when given, else SDD_BACKEND, else auto; errors name whichever was read. */
export function backendChoice(flag: string | undefined): BackendChoice {
  return flag === undefined ? backendFromEnv() : parseBackendChoice(flag, '--backend');
}

/** A GPU backend asked for by name (a login node cannot see the compute nodes' devices). */
export function namedGpu(choice: BackendChoice): boolean {
  return choice !== 'auto' && backendDef(choice).gpu;
}

/**
 * Whether runs started with this choice will drive a GPU, decided without starting a backend
 * (the parent of the run processes must not hold the device): named GPU backends, or auto on a
 * machine with a GPU device node.
 */
export function likelyGpu(choice: BackendChoice): boolean {
  return namedGpu(choice) || (choice === 'auto' && gpuDeviceNode() !== null);
}

/**
 * Run processes sharing one GPU by default (`sdd run --jobs`). Not yet measured on a GPU: the GPU
 * check (bin/gpu-check.sh) times `make table1` at 1, 2 and 4 and prints the fastest.
 */
export const GPU_DEFAULT_JOBS = 2;
