/**
 * Runs another backend's kernel on this backend's tensors by copying through host memory. Used for
 * kernels that training needs only rarely (depthwise backprop, UnsortedSegmentSum), where a copy
 * is cheaper to maintain than a native port; the cpu backend is the reference for them anyway.
 */
import {
  findBackend,
  getKernel,
  type KernelBackend,
  type KernelFunc,
  type NamedTensorInfoMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';

export function delegateKernel(kernelName: string, toBackendName = 'cpu'): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const target = findBackend(toBackendName);
    const config = getKernel(kernelName, toBackendName);
    if (target == null || config == null) {
      throw new Error(`${kernelName}: delegate backend '${toBackendName}' is not registered`);
    }
    const src = backend as KernelBackend;
    const moved: NamedTensorInfoMap = {};
    for (const [name, t] of Object.entries(inputs)) {
      if (t == null) continue;
      const values = src.readSync(t.dataId);
      moved[name] = { dataId: target.write(values, t.shape, t.dtype), shape: t.shape, dtype: t.dtype };
    }
    const result = config.kernelFunc({ inputs: moved, backend: target, attrs }) as TensorInfo | TensorInfo[];
    const outs = Array.isArray(result) ? result : [result];
    const back = outs.map((o) => {
      const info = { dataId: src.write(target.readSync(o.dataId), o.shape, o.dtype), shape: o.shape, dtype: o.dtype };
      target.disposeData(o.dataId);
      return info;
    });
    for (const t of Object.values(moved)) if (t) target.disposeData(t.dataId);
    return Array.isArray(result) ? back : back[0];
  };
}
