/**
 * What our own kernels (GroupNorm, GroupNorm+SiLU, fused attention) share: reading their attrs,
 * calling them through the engine (so the tape records them) and registering them with their
 * gradient.
 */
import {
  engine,
  registerGradient,
  registerKernel,
  type GradConfig,
  type KernelFunc,
  type NamedAttrMap,
  type NamedTensorMap,
  type Tensor,
} from '@tensorflow/tfjs-core';

/** A kernel's attrs as the plain object its caller passed. */
export function kernelAttrs<T>(attrs: NamedAttrMap | undefined): T {
  // tfjs types attrs loosely (NamedAttrMap); each kernel's are fixed by its caller below.
  return attrs as unknown as T;
}

/** Runs kernel `name` through the engine; attrs is a plain object of numbers. */
export function runCustomKernel(name: string, inputs: NamedTensorMap, attrs: object): Tensor[] {
  // NamedAttrMap has no slot for a plain object of numbers; runKernel passes it through as is.
  const out = engine().runKernel(name, inputs, attrs as unknown as NamedAttrMap) as Tensor | Tensor[];
  return Array.isArray(out) ? out : [out];
}

/** The upstream gradient of a kernel's first output. */
export function firstDy(dy: Tensor | Tensor[]): Tensor {
  return Array.isArray(dy) ? dy[0] : dy;
}

const gradients = new Set<string>();

/** Registers `kernels` on backendName, and `gradient` once (it is backend-independent). */
export function registerCustomKernels(
  backendName: string,
  kernels: Record<string, KernelFunc>,
  gradient: GradConfig,
): void {
  for (const [kernelName, kernelFunc] of Object.entries(kernels))
    registerKernel({ kernelName, backendName, kernelFunc });
  if (gradients.has(gradient.kernelName)) return;
  registerGradient(gradient);
  gradients.add(gradient.kernelName);
}
