/**
 * Picks the compute backend: tfjs-node-gpu → webgpu (a hardware adapter) → tfjs-node → wasm → cpu,
 * unless overridden with `--backend` / SDD_BACKEND. Algorithms never ask which one they got; only
 * doctor, env.json and the execution plan (pool or one GPU process) do.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node bundle ships ops without their gradients; the union package's bundle registers
// them (and tf.layers) on the same, deduplicated tfjs-core instance.
import '@tensorflow/tfjs';
import { forbidSyncReads, syncReadsForbiddenByEnv } from './sync_guard.js';
import { releaseGpu, type AdapterInfo } from './webgpu.js';
import { BACKENDS, BackendChoiceError, backendDef, type BackendChoice, type BackendName } from './choices.js';

export * from './choices.js';
export { deviceMemory, resetPeakMemory, type DeviceMemory } from './memory.js';
export { flushDevicePool, maxBindingBytes, poolCounters, type PoolCounters } from './webgpu_pool.js';

export interface BackendAttempt {
  choice: BackendName;
  ok: boolean;
  reason?: string;
}

export interface BackendInfo {
  /** What was chosen, as named on the command line. */
  choice: BackendName;
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

let active: BackendInfo | null = null;
let adapter: AdapterInfo | null = null;

/** Starts one backend; a reason when it cannot. */
async function activate(choice: BackendName, auto: boolean): Promise<string | null> {
  const got = await backendDef(choice).activate({
    auto,
    tf,
    onDeviceFault: (reason) => faultRejecter?.(new DeviceFaultError(reason)),
  });
  if (!got.ok) return got.reason;
  adapter = got.adapter ?? null;
  return null;
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
  const candidates = requested === 'auto' ? BACKENDS.map((d) => d.name) : [requested];
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

function describe(choice: BackendName, attempts: BackendAttempt[]): BackendInfo {
  const def = backendDef(choice);
  const isWasm = def.tfName === 'wasm';
  return {
    choice,
    tfName: tf.getBackend(),
    adapter,
    gpu: def.gpu,
    simd: isWasm ? tf.env().getBool('WASM_HAS_SIMD_SUPPORT') : null,
    threads: isWasm ? tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') : null,
    replacedKernels: def.replacedKernels,
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
  // Only on webgpu (checked above): its backend holds the GPUDevice, which tfjs's public types do not show.
  (tf.backend() as unknown as { device: { destroy(): void } }).device.destroy();
}

/**
 * Lets a finished process exit: Dawn's addon holds the event loop open while its GPU object
 * lives. A no-op on the other backends.
 */
export function shutdownBackend(): void {
  if (active?.choice !== 'webgpu') return;
  // Only on webgpu (checked above): its backend holds the GPUDevice, which tfjs's public types do not show.
  const backend = tf.backend() as unknown as { device?: { destroy(): void } };
  releaseGpu(backend.device);
}
