/**
 * What the two Conv2D backprop kernels (input and filter) decode from a call alike: their inputs,
 * the forward convolution's NHWC geometry, and a scope on the calling backend. NCHW calls are left
 * to the backend's own kernel (the composite kernels are written for NHWC only).
 */
import {
  backend_util,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropFilterInputs,
  type Conv2DBackpropInputAttrs,
  type Conv2DBackpropInputInputs,
  type KernelBackend,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { KernelScope } from './kernel_util.js';

type Shape4 = [number, number, number, number];
/** The attributes both backprop kernels carry (tfjs's Conv2DBackpropFilterAttrs has the same). */
type BackpropAttrs = Pick<Conv2DBackpropInputAttrs, 'strides' | 'pad' | 'dimRoundingMode' | 'dataFormat'>;
type Inputs<I> = Required<{ [K in keyof I]: TensorInfo }>;
type CallArgs = Parameters<KernelFunc>[0];

export interface BackpropCall<I> {
  inputs: Inputs<I>;
  info: backend_util.Conv2DInfo;
  scope: KernelScope;
}

/**
 * Decodes a backprop call, or null for NCHW (the caller runs its fallback). `shapes` names the
 * forward conv's input and filter shapes: one is an input tensor's, the other an attribute.
 */
function decodeBackpropCall<I, A extends BackpropAttrs>(
  args: CallArgs,
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

/** A Conv2DBackpropFilter call: the forward conv's input is x's shape, its filter the attribute. */
export function decodeFilterCall(args: CallArgs, backendName: string) {
  return decodeBackpropCall<Conv2DBackpropFilterInputs, Conv2DBackpropFilterAttrs>(args, backendName, ({ x }, a) => ({
    input: x.shape as Shape4,
    filter: a.filterShape,
  }));
}

/** A Conv2DBackpropInput call: the forward conv's input is the attribute, its filter the tensor's shape. */
export function decodeInputCall(args: CallArgs, backendName: string) {
  return decodeBackpropCall<Conv2DBackpropInputInputs, Conv2DBackpropInputAttrs>(
    args,
    backendName,
    ({ filter }, a) => ({
      input: a.inputShape,
      filter: filter.shape as Shape4,
    }),
  );
}
