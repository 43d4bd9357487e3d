/**
 * BatchMatMul for wasm with transposed operands made explicit. The built-in kernel walks a
 * transposed operand with a large stride and is 7–25× slower than the plain product on the shapes
 * training produces (dense-layer weight gradients are xᵀ·dy); a cache-blocked transpose followed
 * by the plain product costs a fraction of that (bench/kernels.ts measures both).
 */
import type { KernelBackend, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';

/** The part of the wasm backend we use: its output allocation and heap views. */
interface HeapBackend extends KernelBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
}

const TILE = 32;

/** Swaps the last two axes, tile by tile so both reads and writes stay in cache. */
export function transposeLast2(backend: HeapBackend, x: TensorInfo): TensorInfo {
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

export function makeBatchMatMul(original: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const attrs = args.attrs as NamedAttrMap & { transposeA: boolean; transposeB: boolean };
    if ((!attrs.transposeA && !attrs.transposeB) || a.dtype !== 'float32' || b.dtype !== 'float32') return original(args);
    const backend = args.backend as HeapBackend;
    const temps: TensorInfo[] = [];
    const plain = (t: TensorInfo, transposed: boolean) => {
      if (!transposed) return t;
      const tt = transposeLast2(backend, t);
      temps.push(tt);
      return tt;
    };
    try {
      return original({
        ...args,
        inputs: { a: plain(a, attrs.transposeA), b: plain(b, attrs.transposeB) },
        attrs: { ...attrs, transposeA: false, transposeB: false },
      });
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
}
