/**
 * Picks the compute backend: tfjs-node-gpu → webgpu (a hardware adapter) → tfjs-node → wasm → cpu,
 * unless overridden with `--backend` / SDD_BACKEND. Algorithms never ask which one they got; only
 * doctor, env.json and the execution plan (pool or one GPU process) do.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node bundle ships ops without their gradients; the union package's bundle registers
// them (and tf.layers) on the same, deduplicated tfjs-core instance.
import '@tensorflow/tfjs';
import { registerReplacementKernels } from './kernels/register.js';
import { registerWebGpuKernels } from './kernels/webgpu_fixes.js';
import { registerFusedAttention } from './kernels/attention.js';
import { forbidSyncReads, syncReadsForbiddenByEnv } from './sync_guard.js';
import { gpuDeviceNode, isSoftware, NoAdapterError, probeAdapter, releaseGpu, startWebGpu, watchDevice, type AdapterInfo } from './webgpu.js';

export const BACKEND_CHOICES = ['auto', 'node-gpu', 'webgpu', 'node', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface BackendAttempt {
  choice: Exclude<BackendChoice, 'auto'>;
  ok: boolean;
  reason?: string;
}

export interface BackendInfo {
  /** What was chosen, as named on the command line. */
  choice: Exclude<BackendChoice, 'auto'>;
  /** tfjs's name for the active backend ('tensorflow', 'webgpu', 'wasm', 'cpu'). */
  tfName: string;
  /** The WebGPU adapter (webgpu only): vendor, architecture, device and the limits that matter. */
  adapter: AdapterInfo | null;
  /** True where one process drives a GPU (webgpu, node-gpu): no worker pool, no data parallelism. */
  gpu: boolean;
  simd: boolean | null;
  threads: boolean | null;
  replacedKernels: boolean;
  attempts: BackendAttempt[];
  tfjsVersion: string;
}

const ORDER: Array<Exclude<BackendChoice, 'auto'>> = ['node-gpu', 'webgpu', 'node', 'wasm', 'cpu'];

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

let adapter: AdapterInfo | null = null;

/** webgpu: a hardware adapter, or (asked for by name) any adapter, software ones included. */
async function activateWebGpu(auto: boolean): Promise<string | null> {
  if (auto && !gpuDeviceNode()) return 'no GPU device (/dev/nvidia*, /dev/dri/renderD*); --backend webgpu tries a software adapter anyway';
  try {
    const probe = await probeAdapter();
    if (auto && isSoftware(probe.info)) {
      return `only a software adapter (${probe.info.description || probe.info.device}); --backend webgpu uses it anyway, for tests`;
    }
    await startWebGpu(probe.gpu);
    if (!(await tf.setBackend('webgpu'))) return 'the webgpu backend failed to initialise on the adapter';
    await registerWebGpuKernels();
    registerFusedAttention('webgpu');
    adapter = probe.info;
    const device = (tf.backend() as unknown as { device: Parameters<typeof watchDevice>[0] }).device;
    watchDevice(device, (reason) => faultRejecter?.(new DeviceFaultError(reason)));
    return null;
  } catch (e) {
    if (e instanceof NoAdapterError) return e.message;
    throw e;
  }
}

async function activate(choice: Exclude<BackendChoice, 'auto'>, auto: boolean): Promise<string | null> {
  switch (choice) {
    case 'webgpu':
      return activateWebGpu(auto);
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
      const reason = await activate(choice, requested === 'auto');
      attempts.push(reason ? { choice, ok: false, reason } : { choice, ok: true });
      if (!reason) {
        await tf.ready();
        if (syncReadsForbiddenByEnv()) forbidSyncReads();
        active = describe(choice, attempts);
        return active;
      }
    }
  } finally {
    console.warn = warn;
  }
  if (requested !== 'auto') throw new BackendChoiceError(`backend ${requested} cannot start: ${attempts[0]?.reason}`);
  const why = attempts.map((a) => `${a.choice}: ${a.reason}`).join('; ');
  throw new BackendChoiceError(`no compute backend could start (${why})`);
}

function describe(choice: Exclude<BackendChoice, 'auto'>, attempts: BackendAttempt[]): BackendInfo {
  const isWasm = choice === 'wasm';
  return {
    choice,
    tfName: tf.getBackend(),
    adapter: choice === 'webgpu' ? adapter : null,
    gpu: choice === 'webgpu' || choice === 'node-gpu',
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

/** The device failed under a run (lost, out of memory): the run fails and resumes later. */
export class DeviceFaultError extends Error {
  override name = 'DeviceFaultError';
}

let faultRejecter: ((e: DeviceFaultError) => void) | null = null;
const faultPromise = new Promise<never>((_, reject) => {
  faultRejecter = reject;
});
faultPromise.catch(() => {}); // observed by whoever races it; never an unhandled rejection

/**
 * Settles only if the GPU device fails: race long work against it. On CPU backends it never
 * settles.
 */
export function deviceFault(): Promise<never> {
  return faultPromise;
}

/** Fault injection for the tests: destroys the GPU device as a driver reset would (no-op off webgpu). */
export function simulateDeviceLoss(): void {
  if (active?.choice !== 'webgpu') return;
  (tf.backend() as unknown as { device: { destroy(): void } }).device.destroy();
}

/**
 * Lets a finished process exit: Dawn's addon holds the event loop open while its GPU object
 * lives. A no-op on the other backends.
 */
export function shutdownBackend(): void {
  if (active?.choice !== 'webgpu') return;
  const backend = tf.backend() as unknown as { device?: { destroy(): void } };
  releaseGpu(backend.device);
}

/**
 * Run processes sharing one GPU by default (`sdd run --jobs`). Not yet measured on a GPU: the GPU
 * check (bin/gpu-check.sh) times `make table1` at 1, 2 and 4 and prints the fastest.
 */
export const GPU_DEFAULT_JOBS = 2;

/**
 * Whether runs started with this choice will drive a GPU, decided without starting a backend
 * (the parent of the run processes must not hold the device): named GPU backends, or auto on a
 * machine with a GPU device node.
 */
export function likelyGpu(choice: BackendChoice): boolean {
  if (choice === 'webgpu' || choice === 'node-gpu') return true;
  return choice === 'auto' && gpuDeviceNode() !== null;
}

/** SDD_BACKEND, else auto. */
export function backendFromEnv(): BackendChoice {
  return parseBackendChoice(process.env.SDD_BACKEND, 'SDD_BACKEND');
}

/** A `--backend` flag when given, else SDD_BACKEND, else auto; errors name whichever was read. */
export function backendChoice(flag: string | undefined): BackendChoice {
  return flag === undefined ? backendFromEnv() : parseBackendChoice(flag, '--backend');
}
