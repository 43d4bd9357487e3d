/**
 * The SDD guidance step the webgpu tests run (test/webgpu_conformance.test.ts,
 * test/webgpu_memory.test.ts): at timestep t with guidance scale 20, the SDS gradient g of E(x),
 * and g injected back through the VAE encoder, ∂/∂x ⟨g, E(x, vaeNoise)⟩ (what distill
 * backpropagates into the mapper). Their HQS scans use the same settings and prompt.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  GUIDANCE_DEFAULTS,
  sdsGradient,
  sdsInjection,
  type GuidanceCondition,
  type GuidanceSettings,
} from '../src/sdd/guidance.js';
import type { DiffusionModels } from '../src/world/types.js';

export const GUIDE: GuidanceSettings = { ...GUIDANCE_DEFAULTS, guidance_scale: 20 };
export const PROMPT = { text: 'a face with white hair', negative: '' };

interface SdsInputs {
  x: tf.Tensor4D;
  t: number;
  cond: GuidanceCondition;
  noise: tf.Tensor4D;
  vaeNoise: tf.Tensor4D;
}

/** g and ∂/∂x ⟨g, E(x)⟩, each computed in its own tidy; the caller disposes both. */
export function sdsStep(d: DiffusionModels, s: SdsInputs): { g: tf.Tensor; dx: tf.Tensor } {
  const g = tf.tidy(() => sdsGradient(d, d.encode(s.x), s.t, s.cond, s.noise, GUIDE));
  const inject = (xi: tf.Tensor) =>
    sdsInjection(d, s.t, s.cond, s.noise, GUIDE)(d.encode(xi as tf.Tensor4D, s.vaeNoise));
  const dx = tf.tidy(() => tf.grad(inject)(s.x));
  return { g, dx };
}
