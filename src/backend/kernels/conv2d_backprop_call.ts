/**
 * What the two Conv2D backprop kernels (input and filter) decode from a call alike: their inputs,
 * the forward convolution's NHWC geometry, and a scope on the calling backend. NCHW calls are left
 * to the backend's own kernel (the composite kernels are written for NHWC only).
 */
import {
  backend_util,
  type Conv2DBackpropInputAttrs,
  type KernelBackend,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { KernelScope } from './kernel_util.js';

type Shape4 = [number, number, number, number];
/** The attributes both backprop kernels carry (tfjs's Conv2DBackpropFilterAttrs has the same). */
type BackpropAttrs = Pick<Conv2DBackpropInputAttrs, 'strides' | 'pad' | 'dimRoundingMode' | 'dataFormat'>;
type Inputs<I> = Required<{ [K in keyof I]: TensorInfo }>;

export interface BackpropCall<I> {
  inputs: Inputs<I>;
  info: backend_util.Conv2DInfo;
  scope: KernelScope;
}

/**
 * Decodes a backprop call, or null for NCHW (the caller runs its fallback). `shapes` names the
 * forward conv's input and filter shapes: one is an input tensor's, the other an attribute.
 */
export function decodeBackpropCall<I, A extends BackpropAttrs>(
  args: Parameters<KernelFunc>[0],
  backendName: string,
  shapes: (inputs: Inputs<I>, attrs: A) => { input: Shape4; filter: Shape4 },
): BackpropCall<I> | null {
  // tfjs types kernel inputs/attrs loosely (NamedTensorInfoMap, NamedAttrMap); these kernels' are
  // fixed by their registration.
  const inputs = args.inputs as unknown as Inputs<I>;
  const attrs = args.attrs as unknown as A;
  if (attrs.dataFormat === 'NCHW') return null;
  const { input, filter } = shapes(inputs, attrs);
  const info = backend_util.computeConv2DInfo(input, filter, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  return { inputs, info, scope: new KernelScope(args.backend as KernelBackend, backendName) };
}
