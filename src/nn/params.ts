/**
 * Named trainable parameters, created on first use with a seeded initialiser, so a model is
 * written as plain functions (diffusers-style explicit forward code) and still has a stable,
 * saveable parameter set.
 */
import * as tf from '@tensorflow/tfjs-core';
import { sha256 } from '../util/hash.js';

export type Init = { kind: 'normal'; std: number } | { kind: 'zeros' } | { kind: 'ones' };

let instances = 0;

export class Params {
  /** Keyed by the model's own parameter name ('down0.res.conv1.weight'). */
  readonly vars = new Map<string, tf.Variable>();
  /** tfjs variable names are global to the engine: each store gets its own prefix. */
  readonly scope = `params${instances++}`;

  constructor(readonly seed: number) {}

  get(name: string, shape: number[], init: Init): tf.Variable {
    const found = this.vars.get(name);
    if (found) {
      if (found.shape.join() !== shape.join()) throw new Error(`param ${name}: shape ${found.shape} ≠ ${shape}`);
      return found;
    }
    // Per-parameter seed from its name: adding a layer does not reshuffle the others.
    const seed = (this.seed * 1_000_003 + parseInt(sha256(name).slice(0, 8), 16)) % 2 ** 31;
    const v = tf.tidy(() =>
      tf.variable(
        init.kind === 'normal' ? tf.randomNormal(shape, 0, init.std, 'float32', seed) : init.kind === 'zeros' ? tf.zeros(shape) : tf.ones(shape),
        true,
        `${this.scope}/${name}`,
      ),
    );
    this.vars.set(name, v);
    return v;
  }

  list(): tf.Variable[] {
    return [...this.vars.values()];
  }

  count(): number {
    return this.list().reduce((a, v) => a + v.size, 0);
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}
