/**
 * Helpers for writing composite kernels out of other kernels of the same backend.
 *
 * Kernels must not call tf ops (that would record on the gradient tape and allocate engine-tracked
 * tensors); instead they call sibling kernel functions directly and free every intermediate through
 * the backend, as tfjs's own composite kernels do.
 */
import {
  getKernel,
  type KernelBackend,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';

export class KernelScope {
  private readonly temps: TensorInfo[] = [];

  constructor(
    readonly backend: KernelBackend,
    readonly backendName: string,
  ) {}

  /** Runs kernel `name` of this backend; the result is freed by `dispose()` unless kept. */
  run(name: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
    const config = getKernel(name, this.backendName);
    if (config == null) throw new Error(`kernel ${name} is not registered for ${this.backendName}`);
    const out = config.kernelFunc({ inputs, backend: this.backend, attrs }) as TensorInfo | TensorInfo[];
    if (Array.isArray(out)) throw new Error(`kernel ${name} returned several outputs`);
    this.temps.push(out);
    return out;
  }

  /** Reshape without a copy where the backend allows it (wasm and cpu share the data id). */
  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }

  /**
   * Grows (positive) or trims (negative) each axis at both ends: one Slice for the negative parts
   * and one PadV2 with zeros for the positive ones.
   */
  padOrTrim(x: TensorInfo, edges: Array<[number, number]>): TensorInfo {
    let cur = x;
    if (edges.some(([a, b]) => a < 0 || b < 0)) {
      const begin = edges.map(([a]) => Math.max(0, -a));
      const size = edges.map(([a, b], i) => x.shape[i] - Math.max(0, -a) - Math.max(0, -b));
      cur = this.run('Slice', { x: cur }, { begin, size });
    }
    if (edges.some(([a, b]) => a > 0 || b > 0)) {
      const paddings = edges.map(([a, b]) => [Math.max(0, a), Math.max(0, b)]);
      cur = this.run('PadV2', { x: cur }, { paddings, constantValue: 0 });
    }
    return cur;
  }

  /**
   * A VALID Conv2D of x grown/trimmed by `edges` on H and W. Growth is passed to the conv as
   * explicit padding (XNNPACK pads implicitly, no copy); only trimming needs a Slice.
   */
  convPadded(
    x: TensorInfo,
    filter: TensorInfo,
    edges: [[number, number], [number, number]],
    dilations: [number, number],
  ): TensorInfo {
    const trim = edges.map(([a, b]) => [Math.min(0, a), Math.min(0, b)] as [number, number]);
    const src = trim.some(([a, b]) => a < 0 || b < 0) ? this.padOrTrim(x, [[0, 0], trim[0], trim[1], [0, 0]]) : x;
    const grow = edges.map(([a, b]) => [Math.max(0, a), Math.max(0, b)]);
    const pad = grow.every(([a, b]) => a === 0 && b === 0) ? 'valid' : [[0, 0], grow[0], grow[1], [0, 0]];
    // NamedAttrMap has no slot for nested pads and undefined; runKernel passes the attrs through as is.
    return this.run('Conv2D', { x: src, filter }, {
      strides: [1, 1],
      pad,
      dataFormat: 'NHWC',
      dilations,
      dimRoundingMode: undefined,
      // NamedAttrMap has no field for a plain object of numbers and tuples: tfjs reads these by name.
    } as unknown as NamedAttrMap);
  }

  /** Frees every intermediate except `keep`. */
  dispose(keep: TensorInfo): TensorInfo {
    for (const t of this.temps) {
      if (t.dataId !== keep.dataId) this.backend.disposeData(t.dataId);
    }
    return keep;
  }
}
