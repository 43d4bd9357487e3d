/**
 * Batch splitting on webgpu (issue #32): no single binding may exceed the device's
 * maxStorageBufferBindingSize (2 GiB on an H200, 128 MiB on lavapipe; setBindingLimit caps it
 * lower). tfjs-backend-webgpu binds
 * every input and output tensor whole, so a batched op over a large batch is rejected by Dawn
 * (webgpu_pool.ts turns that into a BindingTooLargeError). The kernels below run such an op in
 * batch chunks that each fit and assemble the result, instead of failing:
 *   BatchMatMul, _FusedMatMul     along the outer batch dimension (rank ≥ 3), or along the rows of
 *                                 a 2-D product (a linear layer over B·T tokens: torchLinear);
 *   Conv2D, FusedConv2D           along the images;
 *   Conv2DBackpropInput           along the images of dy (and of the input shape);
 *   Conv2DBackpropFilter          along the images of x and dy, the chunks' filter gradients summed;
 *   SddFusedAttention             along batch·heads (the VAE mid-block's 4096-token attention).
 * A tensor larger than one binding can still exist: a GPU buffer may be as large as maxBufferSize
 * (4 GiB on lavapipe). So the chunks are cut from the inputs and written into the output by
 * copyBufferToBuffer (a batch range of a row-major tensor is one byte range), which binds nothing.
 * When one item (or an input without a batch dimension) is still too big, the op runs unsplit and
 * fails with the BindingTooLargeError naming the program and the size; so does every other op.
 *
 * Ordering: the copies are recorded on tfjs's open command encoder between its dispatches, so the
 * queue runs them in order; every tensor a copy names is added to the backend's
 * commandQueueOwnedIds, which defers its release until the encoder is submitted (as tfjs does for
 * a dispatch's tensors), so no buffer is reused or destroyed under a pending copy.
 */
import {
  backend_util,
  getKernel,
  util,
  type DataType,
  type KernelFunc,
  type NamedAttrMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { FUSED_ATTENTION } from './attention.js';
import { put } from './register.js';
import { bindingLimit } from '../webgpu_internals.js';

/** The WebGPUBackend members used (tfjs-backend-webgpu 4.22, backend_webgpu.ts; some private). */
interface SplitBackend {
  device: { limits: { maxStorageBufferBindingSize: number; maxBufferSize: number } };
  tensorMap: { get(dataId: object): { resource: unknown } | undefined };
  commandEncoder: { copyBufferToBuffer(s: unknown, so: number, d: unknown, dOff: number, n: number): void } | null;
  commandQueueOwnedIds: WeakSet<object>;
  uploadToGPU(dataId: object): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  makeTensorInfo(shape: number[], dtype: DataType): TensorInfo;
  disposeData(dataId: object): boolean;
}

const INTERNALS = [
  'uploadToGPU',
  'ensureCommandEncoderReady',
  'endComputePassEncoder',
  'makeTensorInfo',
  'disposeData',
] as const;

/** A kernel's named inputs (optional ones absent or null) and attributes, as the split reads them. */
type Inputs = Record<string, TensorInfo>;
type Attrs = Record<string, unknown>;

/** How one op splits: its batch, the inputs cut along it, its output, a chunk's attributes. */
interface SplitSpec {
  /** The batch size B and the names of the inputs whose dimension 0 is that batch (null: no batch). */
  batch(inputs: Inputs, attrs: Attrs): { size: number; batched: string[] } | null;
  /** The full output's shape. */
  outShape(inputs: Inputs, attrs: Attrs): number[];
  /** Attributes for a chunk of n items (default: unchanged). */
  chunkAttrs?(attrs: Attrs, n: number): NamedAttrMap;
  /** 'concat': the output's dimension 0 is the batch; 'sum': the chunks' outputs add up. */
  combine: 'concat' | 'sum';
}

const bytesOf = (shape: number[]) => util.sizeFromShape(shape) * 4;

/** Inputs among `names` that are present, of rank `rank` and with dimension 0 = `size`. */
function withBatch(inputs: Inputs, names: string[], rank: number, size: number): string[] {
  return names.filter((n) => inputs[n] != null && inputs[n].shape.length === rank && inputs[n].shape[0] === size);
}

function matMulOut(inputs: Inputs, attrs: Attrs): number[] {
  const { a, b } = inputs;
  const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  const outer = backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  return [...outer, m, n];
}

const MATMUL: SplitSpec = {
  batch(inputs, attrs) {
    const out = matMulOut(inputs, attrs);
    const extra = ['bias', 'preluActivationWeights'];
    if (out.length >= 3) return { size: out[0], batched: withBatch(inputs, ['a', 'b', ...extra], out.length, out[0]) };
    // A 2-D product splits along the rows of a (contiguous unless a is transposed); b is whole.
    if ((attrs as { transposeA: boolean }).transposeA) return null;
    return { size: out[0], batched: ['a', ...withBatch(inputs, extra, 2, out[0])] };
  },
  outShape: matMulOut,
  combine: 'concat',
};

/** Conv2D's attributes (tfjs-core's Conv2DAttrs), as its kernel receives them. */
interface ConvAttrs {
  strides: [number, number];
  pad: 'valid' | 'same' | number;
  dataFormat: 'NHWC' | 'NCHW';
  dilations: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function convInfo(x: number[], filter: number[], attrs: Attrs, dilations: number | [number, number]) {
  // A conv kernel's attrs as its caller (tfjs's conv2d ops) passed them.
  const a = attrs as unknown as ConvAttrs;
  return backend_util.computeConv2DInfo(
    x as [number, number, number, number],
    filter as [number, number, number, number],
    a.strides,
    dilations,
    a.pad,
    a.dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(a.dataFormat),
  );
}

// As convInfo: the conv kernels' attrs.
const dilationsOf = (attrs: Attrs) => (attrs as unknown as ConvAttrs).dilations;

const CONV2D: SplitSpec = {
  batch: (inputs) => {
    const size = inputs.x.shape[0];
    return { size, batched: ['x', ...withBatch(inputs, ['bias', 'preluActivationWeights'], 4, size)] };
  },
  outShape: (inputs, attrs) => convInfo(inputs.x.shape, inputs.filter.shape, attrs, dilationsOf(attrs)).outShape,
  combine: 'concat',
};

const CONV2D_BACKPROP_INPUT: SplitSpec = {
  batch: (inputs) => ({ size: inputs.dy.shape[0], batched: ['dy'] }),
  outShape: (_inputs, attrs) => [...(attrs as { inputShape: number[] }).inputShape],
  chunkAttrs: (attrs, n) => {
    const inputShape = (attrs as { inputShape: number[] }).inputShape;
    return { ...attrs, inputShape: [n, ...inputShape.slice(1)] };
  },
  combine: 'concat',
};

const CONV2D_BACKPROP_FILTER: SplitSpec = {
  batch: (inputs) => ({ size: inputs.x.shape[0], batched: ['x', 'dy'] }),
  outShape: (_inputs, attrs) => [...(attrs as { filterShape: number[] }).filterShape],
  combine: 'sum',
};

const ATTENTION: SplitSpec = {
  batch: (inputs) => ({ size: inputs.q.shape[0], batched: ['q', 'k', 'v'] }),
  outShape: (inputs) => [...inputs.q.shape.slice(0, -1), inputs.v.shape[inputs.v.shape.length - 1]],
  combine: 'concat',
};

/** Items per chunk so that every binding fits `limit`, or 0 when splitting cannot help. */
function chunkSize(spec: SplitSpec, inputs: Inputs, attrs: Attrs, limit: number): number {
  const batch = spec.batch(inputs, attrs);
  const out = spec.outShape(inputs, attrs);
  const present = Object.entries(inputs).filter(([, t]) => t != null) as Array<[string, TensorInfo]>;
  const largest = Math.max(bytesOf(out), ...present.map(([, t]) => bytesOf(t.shape)));
  if (largest <= limit || batch == null || batch.size <= 1 || batch.batched.length === 0) return 0;
  let perItem = spec.combine === 'concat' ? bytesOf(out) / batch.size : 0;
  let whole = spec.combine === 'sum' ? bytesOf(out) : 0;
  for (const [name, t] of present) {
    if (batch.batched.includes(name)) perItem = Math.max(perItem, bytesOf(t.shape) / batch.size);
    else whole = Math.max(whole, bytesOf(t.shape));
  }
  if (whole > limit || perItem > limit) return 0;
  return Math.min(batch.size - 1, Math.floor(limit / perItem));
}

const bufferOf = (be: SplitBackend, t: TensorInfo) => {
  be.uploadToGPU(t.dataId);
  return be.tensorMap.get(t.dataId)!.resource;
};

/** Records a byte-range copy between two tensors' buffers on the open encoder (binds nothing). */
function copy(be: SplitBackend, src: TensorInfo, srcOffset: number, dst: TensorInfo, dstOffset: number, n: number) {
  const from = bufferOf(be, src);
  const to = bufferOf(be, dst);
  be.ensureCommandEncoderReady();
  be.endComputePassEncoder();
  be.commandEncoder!.copyBufferToBuffer(from, srcOffset, to, dstOffset, n);
  be.commandQueueOwnedIds.add(src.dataId);
  be.commandQueueOwnedIds.add(dst.dataId);
}

/** Items [start, start + n) of `x` along dimension 0, as a new tensor. */
function sliceBatch(be: SplitBackend, x: TensorInfo, start: number, n: number): TensorInfo {
  const row = bytesOf(x.shape) / x.shape[0];
  const out = be.makeTensorInfo([n, ...x.shape.slice(1)], x.dtype);
  copy(be, x, start * row, out, 0, n * row);
  return out;
}

/** Runs `original` over chunks of `size` items and concatenates or sums the chunks' outputs. */
function runChunks(original: KernelFunc, spec: SplitSpec, call: Call, size: number, add: KernelFunc): TensorInfo {
  const { be, backend, inputs: all, attrs: allAttrs } = call;
  const { batched, size: total } = spec.batch(all, allAttrs)!;
  const outShape = spec.outShape(all, allAttrs);
  let result: TensorInfo | null = null;
  for (let start = 0; start < total; start += size) {
    const n = Math.min(size, total - start);
    const inputs: Inputs = { ...all };
    for (const name of batched) inputs[name] = sliceBatch(be, all[name], start, n);
    const attrs = (spec.chunkAttrs ? spec.chunkAttrs(allAttrs, n) : allAttrs) as NamedAttrMap;
    const part = original({ inputs, backend, attrs }) as TensorInfo;
    for (const name of batched) be.disposeData(inputs[name].dataId);
    if (spec.combine === 'sum') {
      const prev: TensorInfo | null = result;
      result = prev ? (add({ inputs: { a: prev, b: part }, backend, attrs: {} }) as TensorInfo) : part;
      if (prev) [prev, part].forEach((t) => be.disposeData(t.dataId));
      continue;
    }
    result ??= be.makeTensorInfo(outShape, part.dtype);
    const item = bytesOf(outShape) / outShape[0];
    copy(be, part, 0, result, start * item, n * item);
    be.disposeData(part.dataId);
  }
  return result!;
}

/** A kernel call as the split reads it. */
interface Call {
  be: SplitBackend;
  backend: Parameters<KernelFunc>[0]['backend'];
  inputs: Inputs;
  attrs: Attrs;
}

/** `original`, split into batch chunks when a binding would exceed the device's limit. */
function splitting(original: KernelFunc, spec: SplitSpec, add: KernelFunc): KernelFunc {
  const split: KernelFunc = (args) => {
    // Registered for webgpu only: the backend is tfjs-backend-webgpu's (its class is not in the kernel's types).
    const be = args.backend as unknown as SplitBackend;
    // tfjs types kernel inputs loosely (optional entries may be undefined); absent ones are skipped.
    const call: Call = { be, backend: args.backend, inputs: args.inputs as Inputs, attrs: (args.attrs ?? {}) as Attrs };
    const size = chunkSize(spec, call.inputs, call.attrs, bindingLimit(be.device));
    const fits = size > 0 && bytesOf(spec.outShape(call.inputs, call.attrs)) <= be.device.limits.maxBufferSize;
    return fits ? runChunks(original, spec, call, size, add) : original(args);
  };
  (split as { sddSplit?: boolean }).sddSplit = true;
  return split;
}

/** The kernels split, by name. */
const SPLIT_KERNELS: Record<string, SplitSpec> = {
  BatchMatMul: MATMUL,
  _FusedMatMul: MATMUL,
  Conv2D: CONV2D,
  FusedConv2D: CONV2D,
  Conv2DBackpropInput: CONV2D_BACKPROP_INPUT,
  Conv2DBackpropFilter: CONV2D_BACKPROP_FILTER,
  [FUSED_ATTENTION]: ATTENTION,
};

/** Why the split cannot be installed on `backend` (empty: it can). */
function checkSplitInternals(backend: unknown): string[] {
  const be = backend as Record<string, unknown> | null;
  const missing = INTERNALS.filter((k) => typeof be?.[k] !== 'function');
  if (!(be?.commandQueueOwnedIds instanceof WeakSet)) missing.push('commandQueueOwnedIds' as never);
  return missing.map((k) => `WebGPUBackend.${k}: missing`);
}

/**
 * Wraps the webgpu kernels above (call once the backend is active and its kernels, the fused
 * attention included, are registered). Idempotent. Returns the problems when the backend lacks
 * the internals used (then nothing is wrapped: ops fail at the limit as before).
 */
export function registerBatchSplit(backend: unknown): string[] {
  const problems = checkSplitInternals(backend);
  const add = getKernel('Add', 'webgpu')?.kernelFunc;
  if (problems.length || !add) return problems.length ? problems : ['webgpu Add kernel: missing'];
  for (const [name, spec] of Object.entries(SPLIT_KERNELS)) {
    const k = getKernel(name, 'webgpu');
    if (!k || (k.kernelFunc as { sddSplit?: boolean }).sddSplit) continue;
    put(name, 'webgpu', splitting(k.kernelFunc, spec, add));
  }
  return [];
}
