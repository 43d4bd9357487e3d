/**
 * A bounded buffer pool for tfjs-backend-webgpu 4.22, laid over its private BufferManager.
 *
 * Why: 4.22's BufferManager keeps every released GPUBuffer in a free list keyed by exact size and
 * usage and never destroys one, so pooled memory grows with every distinct tensor size; readback
 * staging buffers (MAP_READ) are pooled the same way. A paper-scale run exhausted an H200's 141 GB
 * that way (issue #32). Here, free buffers beyond a byte budget are destroyed, least recently
 * released first, and `flushDevicePool()` destroys them all (call it at batch boundaries).
 *
 * Budgets (MiB, from the environment at install time):
 *   SDD_WEBGPU_POOL_MB     all free buffers together; default 2048 (DEFAULT_POOL_MB).
 *   SDD_WEBGPU_STAGING_MB  free readback staging buffers (host-visible memory) among them;
 *                          default 256 (DEFAULT_STAGING_MB).
 * A budget of 0 pools nothing (every release destroys once the GPU is done with the buffer).
 *
 * Safety: a buffer released while commands are still being recorded may be named by the
 * unsubmitted command encoder (tfjs defers the releases of dispatch inputs and outputs itself, but
 * not of an upload's copy target), and destroying it would invalidate the submit. Such buffers are
 * evicted only after the next submit; when nothing else is left to evict, the layer submits the
 * encoder itself, as a readback does. So the budgets hold after every release. Destroying a buffer
 * that already-submitted work uses is allowed by WebGPU (the memory goes when the work is done).
 *
 * The layer reaches into private fields (INTERNALS in webgpu_internals.ts); `checkPoolInternals`
 * says what is missing, test/webgpu_memory.test.ts fails when any changes (a tfjs upgrade), and
 * installing on a backend that lacks them warns and leaves the pool unbounded rather than
 * breaking the backend. Installing also wraps the batch-splitting kernels
 * (kernels/webgpu_batch_split.ts): ops whose bindings would exceed the device's limit run in chunks.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  bindingLimit,
  checkBindings,
  checkPoolInternals,
  uploadsHostValues,
  writeUpload,
  type BackendInternals,
  type GpuBufferLike,
} from './webgpu_internals.js';
import { registerBatchSplit } from './kernels/webgpu_batch_split.js';

export { BindingTooLargeError, checkPoolInternals, setBindingLimit } from './webgpu_internals.js';

const DEFAULT_POOL_MB = 2048;
const DEFAULT_STAGING_MB = 256;
const MIB = 1024 * 1024;

/** The pool's counters since install (bytes unless named otherwise). */
export interface PoolCounters {
  budget_bytes: number;
  staging_budget_bytes: number;
  /** Free buffers held now, all kinds, and the readback staging ones among them. */
  bytes_pooled: number;
  staging_bytes_pooled: number;
  buffers_pooled: number;
  /** Bytes in live buffers (tensors, in-flight uniforms) now, and all buffers held (in use + pooled). */
  bytes_in_use: number;
  bytes_allocated: number;
  /** The most ever held at once (in use + pooled), sampled at each buffer creation. */
  peak_bytes_allocated: number;
  peak_bytes_in_use: number;
  /** Buffers created by the device, taken from the pool, and destroyed by this layer. */
  created: number;
  created_bytes: number;
  /** `created` by kind: tensor storage, uniforms, readback (MAP_READ) and upload (MAP_WRITE) staging. */
  created_by_kind: Record<BufferKind, number>;
  reused: number;
  evicted: number;
  evicted_bytes: number;
  flushes: number;
  /** Compute dispatches recorded and queue submits (for the bench's per-step counts). */
  dispatches: number;
  submits: number;
  /** Submits this layer made to free buffers an open encoder might name (tiny budgets only). */
  forced_submits: number;
  /** Compute passes ended (tfjs's own uploads end the pass: one more pass per upload). */
  passes: number;
  /** Host → GPU tensor uploads, and those done by queue.writeBuffer (below). */
  uploads: number;
  written_uploads: number;
}

interface PoolState {
  counters: PoolCounters;
  /** Free buffers in release order (oldest first): Map keeps insertion order. */
  lru: Map<GpuBufferLike, 'staging' | 'other'>;
  /** Released while an encoder was open: not evictable until the next submit. */
  unsafe: Set<GpuBufferLike>;
  backend: BackendInternals;
  /** Uploads by queue.writeBuffer (default) or tfjs's staging path (SDD_WEBGPU_WRITE_UPLOADS=0). */
  writeUploads: boolean;
}

let state: PoolState | null = null;

function budgetFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback * MIB;
  const mb = Number(raw);
  if (!Number.isFinite(mb) || mb < 0) throw new Error(`${name}=${raw}: expected a size in MiB (a number ≥ 0)`);
  return Math.floor(mb * MIB);
}

// GPUBufferUsage bits (WebGPU spec constants; the global exists only once Dawn is loaded).
const MAP_READ = 0x0001;
const MAP_WRITE = 0x0002;
const UNIFORM = 0x0040;

type BufferKind = 'storage' | 'uniform' | 'readback' | 'upload';
const kindOf = (usage: number): BufferKind =>
  usage & MAP_READ ? 'readback' : usage & MAP_WRITE ? 'upload' : usage & UNIFORM ? 'uniform' : 'storage';
const keyOf = (b: GpuBufferLike) => `${b.size}_${b.usage}`;

/** Destroys one free buffer, removing it from tfjs's free list and counts. */
function evict(s: PoolState, b: GpuBufferLike): void {
  const bm = s.backend.bufferManager;
  const list = bm.freeBuffers.get(keyOf(b));
  const i = list ? list.indexOf(b) : -1;
  if (i < 0)
    throw new Error('webgpu pool: a pooled buffer is missing from the BufferManager free list (internals changed?)');
  list!.splice(i, 1);
  bm.numFreeBuffers--;
  bm.numBytesAllocated -= b.size;
  b.destroy();
  forget(s, b);
  s.counters.evicted++;
  s.counters.evicted_bytes += b.size;
}

/** Drops `b` from the pool's bookkeeping (taken back into use, or destroyed). */
function forget(s: PoolState, b: GpuBufferLike): void {
  const kind = s.lru.get(b);
  if (kind === undefined) return;
  s.lru.delete(b);
  s.unsafe.delete(b);
  s.counters.bytes_pooled -= b.size;
  s.counters.buffers_pooled--;
  if (kind === 'staging') s.counters.staging_bytes_pooled -= b.size;
}

/** Evicts least recently released first until both budgets hold (skipping buffers not yet safe). */
function trim(s: PoolState, budget = s.counters.budget_bytes, stagingBudget = s.counters.staging_budget_bytes): void {
  const c = s.counters;
  if (c.bytes_pooled <= budget && c.staging_bytes_pooled <= stagingBudget) return;
  // Deleting from a Map while iterating it is defined (deleted entries are not visited).
  for (const [b, kind] of s.lru) {
    const overall = c.bytes_pooled > budget;
    const staging = c.staging_bytes_pooled > stagingBudget;
    if (!overall && !staging) break;
    if (s.unsafe.has(b) || (!overall && kind !== 'staging')) continue;
    evict(s, b);
  }
  // Still over with only buffers the open encoder may name: submit it (as a readback would), after
  // which they are safe; the wrapped submitQueue trims again. Only tiny budgets get here.
  const over = c.bytes_pooled > budget || c.staging_bytes_pooled > stagingBudget;
  if (over && s.unsafe.size > 0 && s.backend.commandEncoder != null) {
    s.counters.forced_submits++;
    s.backend.endComputePassEncoder();
    s.backend.submitQueue();
  }
}

function samplePeaks(s: PoolState): void {
  const bm = s.backend.bufferManager;
  const c = s.counters;
  c.peak_bytes_allocated = Math.max(c.peak_bytes_allocated, bm.numBytesAllocated);
  c.peak_bytes_in_use = Math.max(c.peak_bytes_in_use, bm.numBytesUsed);
}

/** Counters at install: budgets from the environment, peaks from what tfjs already holds. */
function freshCounters(bm: BackendInternals['bufferManager']): PoolCounters {
  return {
    budget_bytes: budgetFromEnv('SDD_WEBGPU_POOL_MB', DEFAULT_POOL_MB),
    staging_budget_bytes: budgetFromEnv('SDD_WEBGPU_STAGING_MB', DEFAULT_STAGING_MB),
    bytes_pooled: 0,
    staging_bytes_pooled: 0,
    buffers_pooled: 0,
    bytes_in_use: 0,
    bytes_allocated: 0,
    peak_bytes_allocated: bm.numBytesAllocated,
    peak_bytes_in_use: bm.numBytesUsed,
    created: 0,
    created_bytes: 0,
    created_by_kind: { storage: 0, uniform: 0, readback: 0, upload: 0 },
    reused: 0,
    evicted: 0,
    evicted_bytes: 0,
    flushes: 0,
    dispatches: 0,
    submits: 0,
    forced_submits: 0,
    passes: 0,
    uploads: 0,
    written_uploads: 0,
  };
}

/**
 * Bounds the pool of the active webgpu backend and wraps the batch-splitting kernels (call once it
 * is active and its kernels are registered). Returns the problems when the internals are not as
 * expected (and then changes nothing); an empty list when installed.
 */
export function installDevicePool(backend: unknown = tf.backend()): string[] {
  const problems = checkPoolInternals(backend);
  if (problems.length) return problems;
  const split = registerBatchSplit(backend);
  if (split.length)
    console.error(`sdd: webgpu batch splitting off, tfjs-backend-webgpu internals changed: ${split.join('; ')}`);
  const be = backend as BackendInternals;
  if (be.sddPool) return [];
  const bm = be.bufferManager;
  const s: PoolState = {
    backend: be,
    lru: new Map(),
    unsafe: new Set(),
    writeUploads: process.env.SDD_WEBGPU_WRITE_UPLOADS !== '0',
    counters: freshCounters(bm),
  };
  // Buffers already free when we arrive join the pool, oldest first as far as we can tell.
  for (const list of bm.freeBuffers.values()) for (const b of list) adopt(s, b, false);
  wrapBufferManager(s);
  wrapBackend(s);
  be.sddPool = s;
  state = s;
  trim(s);
  return [];
}

function adopt(s: PoolState, b: GpuBufferLike, unsafe: boolean): void {
  const kind = b.usage & MAP_READ ? 'staging' : 'other';
  s.lru.set(b, kind);
  if (unsafe) s.unsafe.add(b);
  s.counters.bytes_pooled += b.size;
  s.counters.buffers_pooled++;
  if (kind === 'staging') s.counters.staging_bytes_pooled += b.size;
}

/** Instance-level wrappers over the BufferManager's acquire/release (the prototypes stay as they are). */
function wrapBufferManager(s: PoolState): void {
  const be = s.backend;
  const bm = be.bufferManager;
  const acquire = bm.acquireBuffer.bind(bm);
  const release = bm.releaseBuffer.bind(bm);
  bm.acquireBuffer = (size, usage, mappedAtCreation = false, reuse = true) => {
    const free = reuse ? bm.freeBuffers.get(`${size}_${usage}`) : undefined;
    const fromPool = free !== undefined && free.length > 0;
    const b = acquire(size, usage, mappedAtCreation, reuse);
    if (fromPool) {
      forget(s, b);
      s.counters.reused++;
    } else {
      s.counters.created++;
      s.counters.created_bytes += size;
      s.counters.created_by_kind[kindOf(usage)]++;
      samplePeaks(s);
    }
    s.counters.peak_bytes_in_use = Math.max(s.counters.peak_bytes_in_use, bm.numBytesUsed);
    return b;
  };
  bm.releaseBuffer = (b, reuse = true) => {
    const before = bm.numFreeBuffers;
    release(b, reuse);
    if (bm.numFreeBuffers > before) {
      adopt(s, b, be.commandEncoder != null);
      trim(s);
    }
  };
}

/** Instance-level wrappers over the backend's submit, dispatch, pass, upload and program run. */
function wrapBackend(s: PoolState): void {
  const be = s.backend;
  const submit = be.submitQueue.bind(be);
  const record = be.recordAndSubmit.bind(be);
  const run = be.runWebGPUProgram.bind(be);
  const endPass = be.endComputePassEncoder.bind(be);
  const upload = be.uploadToGPU.bind(be);
  be.submitQueue = () => {
    submit();
    s.counters.submits++;
    s.unsafe.clear();
    trim(s);
  };
  be.recordAndSubmit = (...args: unknown[]) => {
    s.counters.dispatches++;
    record(...args);
  };
  be.endComputePassEncoder = () => {
    if (be.computePassEncoder != null) s.counters.passes++;
    endPass();
  };
  be.uploadToGPU = (dataId) => {
    const td = be.tensorMap.get(dataId);
    if (uploadsHostValues(td)) {
      s.counters.uploads++;
      if (s.writeUploads) {
        writeUpload(be, td);
        s.counters.written_uploads++;
        return;
      }
    }
    upload(dataId);
  };
  be.runWebGPUProgram = (program, inputs, outputDtype, ...rest) => {
    checkBindings(program, inputs, outputDtype, bindingLimit(be.device));
    return run(program, inputs, outputDtype, ...rest);
  };
}

/**
 * The most bytes one kernel may bind on the active backend: webgpu's maxStorageBufferBindingSize (or
 * the cap of setBindingLimit); unbounded elsewhere. Models that cannot be split kernel by kernel
 * (the SD VAE at full resolution) size their batch chunks by it.
 */
export function maxBindingBytes(): number {
  if (tf.getBackend() !== 'webgpu') return Infinity;
  // The active backend is webgpu here; its device is a private field (webgpu_internals.ts).
  return bindingLimit((tf.backend() as unknown as BackendInternals).device);
}

/** The counters of the bounded pool, or null off webgpu (or where it could not be installed). */
export function poolCounters(): PoolCounters | null {
  if (!state || tf.getBackend() !== 'webgpu') return null;
  const bm = state.backend.bufferManager;
  return {
    ...state.counters,
    created_by_kind: { ...state.counters.created_by_kind },
    bytes_in_use: bm.numBytesUsed,
    bytes_allocated: bm.numBytesAllocated,
  };
}

/**
 * Submits recorded work and destroys every free buffer (storage, uniform and staging): the
 * batch-boundary flush. Returns the bytes freed; 0 off webgpu. Tensors alive stay as they are.
 */
export function flushDevicePool(): number {
  const s = state;
  if (!s || tf.getBackend() !== 'webgpu') return 0;
  if (s.backend.commandEncoder != null) {
    s.backend.endComputePassEncoder();
    s.backend.submitQueue();
  }
  const before = s.counters.bytes_pooled;
  trim(s, 0, 0);
  s.counters.flushes++;
  return before - s.counters.bytes_pooled;
}

/** Chooses the upload path at run time (the counts bench compares both); no-op off webgpu. */
export function setUploadPath(path: 'writeBuffer' | 'tfjs'): void {
  if (state) state.writeUploads = path === 'writeBuffer';
}

/** Starts the peaks again from what is held now (per batch or per run). */
export function resetPoolPeaks(): void {
  if (!state) return;
  state.counters.peak_bytes_allocated = state.backend.bufferManager.numBytesAllocated;
  state.counters.peak_bytes_in_use = state.backend.bufferManager.numBytesUsed;
}
