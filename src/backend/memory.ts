/**
 * Memory telemetry on every backend, for progress.json, result.json and the progress line: how many
 * tensors are alive, the bytes they hold, what the backend holds beyond them, and the peak.
 *
 *   webgpu  bytes_in_use: GPU buffers in use (tensors uploaded to the device, in-flight uniforms);
 *           bytes_pooled: free buffers kept by the bounded pool (webgpu_pool.ts); peak_bytes: the
 *           most held at once (in use + pooled), sampled at each buffer creation.
 *   wasm    bytes_in_use: tensor bytes; bytes_pooled: the rest of the wasm heap (a heap never
 *           shrinks, so it is the backend's pool); peak_bytes: the heap size, which is its peak.
 *   cpu, tensorflow (tfjs-node)
 *           bytes_in_use: tensor bytes; bytes_pooled: 0 (the allocator's free memory is not
 *           visible); peak_bytes: the most tensor bytes alive at once, sampled at each new tensor.
 * Peaks count from the first call of `deviceMemory` or `resetPeakMemory` (tracking starts then).
 */
import * as tf from '@tensorflow/tfjs-core';
import { poolCounters, resetPoolPeaks } from './webgpu_pool.js';

export interface DeviceMemory {
  /** tfjs's name of the backend measured ('webgpu', 'wasm', 'cpu', 'tensorflow'). */
  backend: string;
  /** Tensors alive (tf.memory().numTensors; variables included). */
  tensors: number;
  bytes_in_use: number;
  bytes_pooled: number;
  peak_bytes: number;
  /** The webgpu pool's budget (SDD_WEBGPU_POOL_MB); null on other backends. */
  pool_budget_bytes: number | null;
}

/** The parts of tfjs's Engine used: its state's byte count and the hook called for each new tensor. */
interface EngineInternals {
  state: { numBytes: number };
  trackTensor(a: unknown, backend: unknown): void;
  sddPeakHooked?: boolean;
}

let tensorPeak = 0;

/** Samples tfjs's tensor-byte count at each new tensor (one comparison each). */
function hookTensorPeak(): void {
  const engine = tf.engine() as unknown as EngineInternals;
  if (engine.sddPeakHooked) return;
  const track = engine.trackTensor.bind(engine);
  engine.trackTensor = (a, backend) => {
    track(a, backend);
    if (engine.state.numBytes > tensorPeak) tensorPeak = engine.state.numBytes;
  };
  engine.sddPeakHooked = true;
  tensorPeak = engine.state.numBytes;
}

/** The wasm heap's size in bytes, or null when the backend is not wasm. */
function wasmHeapBytes(): number | null {
  if (tf.getBackend() !== 'wasm') return null;
  // The wasm backend's module is not in tfjs-core's KernelBackend type.
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8;
  return heap ? heap.buffer.byteLength : null;
}

/** Memory of the active backend now, and its peak (see the module comment per backend). */
export function deviceMemory(): DeviceMemory {
  hookTensorPeak();
  const m = tf.memory();
  const backend = tf.getBackend();
  const pool = poolCounters();
  if (pool) {
    return {
      backend,
      tensors: m.numTensors,
      bytes_in_use: pool.bytes_in_use,
      bytes_pooled: pool.bytes_pooled,
      peak_bytes: pool.peak_bytes_allocated,
      pool_budget_bytes: pool.budget_bytes,
    };
  }
  const heap = wasmHeapBytes();
  if (heap !== null) {
    return {
      backend,
      tensors: m.numTensors,
      bytes_in_use: m.numBytes,
      bytes_pooled: Math.max(0, heap - m.numBytes),
      peak_bytes: heap,
      pool_budget_bytes: null,
    };
  }
  return {
    backend,
    tensors: m.numTensors,
    bytes_in_use: m.numBytes,
    bytes_pooled: 0,
    peak_bytes: Math.max(tensorPeak, m.numBytes),
    pool_budget_bytes: null,
  };
}

/** Starts the peak again from what is held now (webgpu and tensor-byte peaks; wasm's heap cannot). */
export function resetPeakMemory(): void {
  hookTensorPeak();
  // tfjs's Engine keeps its byte count in a field its types do not export (EngineInternals above).
  tensorPeak = (tf.engine() as unknown as EngineInternals).state.numBytes;
  resetPoolPeaks();
}
