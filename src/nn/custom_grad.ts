/**
 * tf.customGrad with the callback typed as tfjs calls it: the op's tensor inputs, then the save
 * function. tfjs types the callback as variadic over `Tensor | GradSaveFunc`, which no function
 * with fixed parameters matches; the one cast that bridges the two lives here.
 */
import * as tf from '@tensorflow/tfjs-core';

type GradResult = { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] };

/** An op of the tensors `A` whose gradient `f` writes out (its gradFunc returns one gradient per input). */
export function customGradOp<A extends tf.Tensor[]>(
  f: (...args: [...A, tf.GradSaveFunc]) => GradResult,
): (...inputs: A) => tf.Tensor {
  // Same function, same runtime arguments (customGrad appends `save` after the inputs): only the
  // declared parameter list differs from tfjs's variadic one.
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as (...inputs: A) => tf.Tensor;
}
