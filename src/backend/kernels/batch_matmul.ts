/**
 * BatchMatMul for wasm with transposed operands made explicit. The built-in kernel walks a
 * transposed operand with a large stride and is 7–25× slower than the plain product on the shapes
 * training produces (dense-layer weight gradients are xᵀ·dy); a cache-blocked transpose followed
 * by the plain product costs a fraction of that (bench/kernels.ts measures both).
 */
import type { KernelBackend, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';

/** The part of the wasm backend we use: its output allocation and heap views. */
export interface HeapBackend extends KernelBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
}

const TILE = 32;

/** Swaps the last two axes, tile by tile so both reads and writes stay in cache. */
function transposeLast2(backend: HeapBackend, x: TensorInfo): TensorInfo {
  const n = x.shape.length;
  const rows = x.shape[n - 2];
  const cols = x.shape[n - 1];
  const batch = x.shape.slice(0, -2).reduce((a, d) => a * d, 1);
  const out = backend.makeOutput([...x.shape.slice(0, -2), cols, rows], 'float32');
  // Views are taken after the allocation: growing the wasm memory detaches older views.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  for (let b = 0; b < batch; b++) {
    const base = b * rows * cols;
    for (let r0 = 0; r0 < rows; r0 += TILE) {
      const r1 = Math.min(rows, r0 + TILE);
      for (let c0 = 0; c0 < cols; c0 += TILE) {
        const c1 = Math.min(cols, c0 + TILE);
        for (let r = r0; r < r1; r++) {
          const srcRow = base + r * cols;
          for (let c = c0; c < c1; c++) dst[base + c * rows + r] = src[srcRow + c];
        }
      }
    }
  }
  return out;
}

/**
 * Below this many multiply-adds per matrix the built-in batched loop beats one call per matrix
 * (each call costs ~10 µs of set-up; the batched path runs ~1 GFLOP/s, XNNPACK's 2-D path 5–15).
 */
const PER_MATRIX_MIN_MACS = 16_384;

/**
 * The product one matrix at a time through the 2-D path. wasm's batched BatchMatMul is a plain
 * loop that is ~5× slower on attention's shapes ([heads·b, 64, 16]·[heads·b, 16, 64]) than XNNPACK,
 * which it uses only for a single matrix. Operands with equal batch dims only.
 */
function perMatrix(
  original: KernelFunc,
  backend: HeapBackend,
  a: TensorInfo,
  b: TensorInfo,
  attrs: NamedAttrMap,
): TensorInfo {
  const [M, K] = a.shape.slice(-2);
  const N = b.shape[b.shape.length - 1];
  const lead = a.shape.slice(0, -2);
  const batch = lead.reduce((x, d) => x * d, 1);
  const out = backend.makeOutput([...lead, M, N], 'float32');
  for (let i = 0; i < batch; i++) {
    // Fresh operands per matrix: XNNPACK's operator, with b packed into it, is cached by b's data
    // id, so refilling one buffer would multiply by the first matrix's b every time.
    const ai = backend.makeOutput([1, M, K], 'float32');
    const bi = backend.makeOutput([1, K, N], 'float32');
    // Views are re-taken after every allocation: any of them may grow the wasm memory.
    backend.typedArrayFromHeap(ai).set(backend.typedArrayFromHeap(a).subarray(i * M * K, (i + 1) * M * K));
    backend.typedArrayFromHeap(bi).set(backend.typedArrayFromHeap(b).subarray(i * K * N, (i + 1) * K * N));
    try {
      const ci = original({
        inputs: { a: ai, b: bi },
        backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      }) as TensorInfo;
      backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(ci), i * M * N);
      backend.disposeData(ci.dataId);
    } finally {
      backend.disposeData(ai.dataId);
      backend.disposeData(bi.dataId);
    }
  }
  return out;
}

function sameBatch(a: TensorInfo, b: TensorInfo): boolean {
  const r = a.shape.length;
  return (
    r > 2 &&
    b.shape.length === r &&
    a.shape.slice(0, -2).every((d, i) => d === b.shape[i]) &&
    a.shape.slice(0, -2).some((d) => d > 1)
  );
}

export function makeBatchMatMul(original: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const attrs = args.attrs as NamedAttrMap & { transposeA: boolean; transposeB: boolean };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return original(args);
    const backend = args.backend as HeapBackend;
    const temps: TensorInfo[] = [];
    const plain = (t: TensorInfo, transposed: boolean) => {
      if (!transposed) return t;
      const tt = transposeLast2(backend, t);
      temps.push(tt);
      return tt;
    };
    try {
      const pa = plain(a, attrs.transposeA);
      const pb = plain(b, attrs.transposeB);
      const [M, K] = pa.shape.slice(-2);
      const N = pb.shape[pb.shape.length - 1];
      if (sameBatch(pa, pb) && M * K * N >= PER_MATRIX_MIN_MACS) return perMatrix(original, backend, pa, pb, attrs);
      if (pa === a && pb === b) return original(args);
      return original({ ...args, inputs: { a: pa, b: pb }, attrs: { ...attrs, transposeA: false, transposeB: false } });
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
}
