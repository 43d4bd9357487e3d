/**
 * tfjs-backend-webgpu 4.22's private internals as webgpu_pool.ts uses them, checked at install
 * (`checkPoolInternals`), and the two per-dispatch guards laid over them: uploads by
 * queue.writeBuffer and the binding-size check (BindingTooLargeError). The pool itself (budgets,
 * eviction, counters) is in webgpu_pool.ts; batch splitting in kernels/webgpu_batch_split.ts.
 */

/** The GPUBuffer fields used (the real class comes from Dawn's addon at run time). */
export interface GpuBufferLike {
  readonly size: number;
  readonly usage: number;
  destroy(): void;
}

/** tfjs-backend-webgpu 4.22's BufferManager (src/buffer_manager.ts), private fields included. */
export interface BufferManagerInternals {
  freeBuffers: Map<string, GpuBufferLike[]>;
  usedBuffers: Map<string, GpuBufferLike[]>;
  numFreeBuffers: number;
  numUsedBuffers: number;
  numBytesUsed: number;
  numBytesAllocated: number;
  acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): GpuBufferLike;
  releaseBuffer(buffer: GpuBufferLike, reuse?: boolean): void;
}

interface ProgramLike {
  outputShape: number[];
  variableNames?: string[];
}
interface TensorInfoLike {
  shape: number[];
  dtype: string;
}

/** A tensor's entry in the backend's tensorMap: host values until uploaded, then its GPU buffer. */
interface TensorDataLike {
  values: ArrayLike<number> | null | undefined;
  dtype: string;
  shape: number[];
  resource: unknown;
}

/** The WebGPUBackend fields used (src/backend_webgpu.ts). */
export interface BackendInternals {
  bufferManager: BufferManagerInternals;
  /** Non-null while commands are recorded and not yet submitted. */
  commandEncoder: unknown;
  submitQueue(): void;
  endComputePassEncoder(): void;
  recordAndSubmit(...args: unknown[]): void;
  runWebGPUProgram(
    program: ProgramLike,
    inputs: TensorInfoLike[],
    outputDtype: string,
    ...rest: unknown[]
  ): TensorInfoLike;
  device: { limits: { maxStorageBufferBindingSize: number } };
  queue: { writeBuffer(buffer: GpuBufferLike, offset: number, data: ArrayBufferView): void };
  tensorMap: { get(dataId: object): TensorDataLike | undefined };
  uploadToGPU(dataId: object): void;
  computePassEncoder: unknown;
  /** Marks the backend whose pool is bounded (installing twice would wrap twice): webgpu_pool.ts's state. */
  sddPool?: object;
}

/** The private members this layer uses: name → typeof, on the backend and on its bufferManager. */
const INTERNALS = {
  backend: {
    bufferManager: 'object',
    commandEncoder: 'object',
    submitQueue: 'function',
    endComputePassEncoder: 'function',
    recordAndSubmit: 'function',
    runWebGPUProgram: 'function',
    device: 'object',
    queue: 'object',
    tensorMap: 'object',
    uploadToGPU: 'function',
    computePassEncoder: 'object',
  },
  bufferManager: {
    freeBuffers: 'object',
    usedBuffers: 'object',
    numFreeBuffers: 'number',
    numUsedBuffers: 'number',
    numBytesUsed: 'number',
    numBytesAllocated: 'number',
    acquireBuffer: 'function',
    releaseBuffer: 'function',
  },
} as const;

/** Problems that keep this layer from working on `backend` (empty: all internals as expected). */
export function checkPoolInternals(backend: unknown): string[] {
  const problems: string[] = [];
  const check = (obj: unknown, fields: Record<string, string>, where: string) => {
    for (const [k, type] of Object.entries(fields)) {
      const v = obj == null ? undefined : (obj as Record<string, unknown>)[k];
      // The encoders are null between submits: present (own key) is what matters.
      const ok =
        k === 'commandEncoder' || k === 'computePassEncoder'
          ? obj != null && k in (obj as object)
          : typeof v === type && v !== null;
      if (!ok) problems.push(`${where}.${k}: expected ${type}, found ${v === null ? 'null' : typeof v}`);
    }
  };
  check(backend, INTERNALS.backend, 'WebGPUBackend');
  const bm = (backend as { bufferManager?: unknown } | null)?.bufferManager;
  if (bm) {
    check(bm, INTERNALS.bufferManager, 'BufferManager');
    for (const k of ['freeBuffers', 'usedBuffers'] as const) {
      if (!((bm as Record<string, unknown>)[k] instanceof Map))
        problems.push(`BufferManager.${k}: expected a Map keyed "size_usage"`);
    }
  }
  return problems;
}

// GPUBufferUsage.STORAGE | COPY_SRC | COPY_DST: every tensor buffer of tfjs-backend-webgpu.
const MIB = 1024 * 1024;
const TENSOR_USAGE = 0x0080 | 0x0004 | 0x0008;

/**
 * A tensor's host values to a GPU buffer by queue.writeBuffer, in place of tfjs 4.22's upload:
 * that one, for a buffer taken from the pool, creates a MAP_WRITE staging buffer, maps, copies,
 * records a copy command (ending the compute pass, so the next dispatch opens a new one) and
 * destroys the staging buffer after the submit: about six N-API calls and a pass per upload, and
 * the bench U-Net's Adam step uploads ~580 scalars. writeBuffer is one call and keeps the pass.
 * Ordering: the write lands on the queue before the encoder being recorded is submitted, so the
 * dispatches recorded after it see the data; those recorded before it cannot name this buffer
 * (it was free, and tfjs frees a buffer that dispatches name only after their submit).
 * SDD_WEBGPU_WRITE_UPLOADS=0 keeps tfjs's path (for the before/after bench).
 */
export function writeUpload(be: BackendInternals, td: TensorDataLike): void {
  const n = count(td.shape);
  const size = n * bytesPer(td.dtype);
  const buffer = be.bufferManager.acquireBuffer(size, TENSOR_USAGE);
  const v = td.values!;
  // tfjs stores int32 and bool as i32 on the GPU, everything else (float32) as f32.
  const data =
    td.dtype === 'int32' || td.dtype === 'bool'
      ? v instanceof Int32Array
        ? v
        : Int32Array.from(v)
      : v instanceof Float32Array
        ? v
        : Float32Array.from(v);
  be.queue.writeBuffer(buffer, 0, data.length === n ? data : data.subarray(0, n));
  // As tfjs: once uploaded, the host copy is dropped.
  td.values = null;
  td.resource = buffer;
}

/** Whether tfjs would upload host values for `td` (float32/int32/bool; others keep tfjs's path). */
export function uploadsHostValues(td: TensorDataLike | undefined): td is TensorDataLike {
  return (
    td != null &&
    td.resource == null &&
    td.values != null &&
    td.values.length > 0 &&
    ['float32', 'int32', 'bool'].includes(td.dtype)
  );
}

/** What one element takes in a GPU buffer (tfjs-webgpu stores bool as i32; complex64 is not bound). */
const bytesPer = (dtype: string) => (dtype === 'complex64' ? 8 : 4);
const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Every tensor a program binds (its inputs and its output) must fit the device's
 * maxStorageBufferBindingSize (2 GiB on an H200, 128 MiB on lavapipe). Beyond it, Dawn rejects the
 * bind group with a validation error that tfjs never surfaces (the run would compute on garbage
 * or fault the device later); here the op fails first, naming the program, the tensor and the size.
 * Checked before anything is allocated for the program. Batched matMuls, convolutions and the fused
 * attention split along the batch before they get here (kernels/webgpu_batch_split.ts).
 */
export class BindingTooLargeError extends Error {
  override name = 'BindingTooLargeError';
}

let cap: number | null = null;

/**
 * Caps the binding limit below the device's (bytes; null: the device's own). For the tests of the
 * batch split at small sizes, and for headroom; it applies to the check below and to the split.
 */
export function setBindingLimit(bytes: number | null): void {
  cap = bytes;
}

/** The largest tensor a program may bind: the device's maxStorageBufferBindingSize, or the cap. */
export function bindingLimit(device: { limits: { maxStorageBufferBindingSize: number } }): number {
  const limit = device.limits.maxStorageBufferBindingSize;
  return cap == null ? limit : Math.min(limit, cap);
}

export function checkBindings(
  program: ProgramLike,
  inputs: TensorInfoLike[],
  outputDtype: string,
  limit: number,
): void {
  const named = [
    ...inputs.map((t, i) => ({ name: program.variableNames?.[i] ?? `input ${i}`, shape: t.shape, dtype: t.dtype })),
    { name: 'output', shape: program.outputShape, dtype: outputDtype },
  ];
  for (const t of named) {
    const bytes = count(t.shape) * bytesPer(t.dtype);
    if (bytes > limit) {
      const op = (program as { constructor: { name: string } }).constructor.name;
      const what =
        cap === limit ? 'the binding limit set (setBindingLimit)' : "this device's maxStorageBufferBindingSize";
      throw new BindingTooLargeError(
        `webgpu: ${op} binds ${t.name} [${t.shape.join(', ')}] ${t.dtype} of ${(bytes / MIB).toFixed(1)} MiB, above ${what} ` +
          `${(limit / MIB).toFixed(0)} MiB, and no batch split applies (one item is too large, or the op has none)`,
      );
    }
  }
}
