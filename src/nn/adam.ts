/**
 * Adam / AdamW as one pass over host arrays per step. tfjs's optimizer issues ~10 kernels per
 * variable (≈1000 tiny kernels for a small U-Net: 10–15% of a wasm training step); here each
 * variable costs one read, one loop and one write. Matches PyTorch's Adam/AdamW update:
 *   m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  w ← w·(1 − lr·wd) − lr·m̂/(√v̂ + ε)
 * (weight decay decoupled, as AdamW; wd = 0 gives Adam). Moments live on the host as float32.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export interface AdamState {
  step: number;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

export class HostAdam {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  lr: number;
  private state: AdamState = { step: 0, m: new Map(), v: new Map() };

  constructor(opts: AdamOptions) {
    this.lr = opts.lr;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
  }

  get step(): number {
    return this.state.step;
  }

  /** Applies one update from gradients keyed by variable name (as tf.variableGrads returns them). */
  apply(vars: tf.Variable[], grads: Record<string, tf.Tensor | Float32Array>): void {
    const t = ++this.state.step;
    const c1 = 1 - this.beta1 ** t;
    const c2 = 1 - this.beta2 ** t;
    const decay = 1 - this.lr * this.weightDecay;
    for (const variable of vars) {
      const g0 = grads[variable.name];
      if (g0 === undefined) continue; // not on the loss path this step
      const g = g0 instanceof Float32Array ? g0 : (g0.dataSync() as Float32Array);
      const w = (variable.dataSync() as Float32Array).slice();
      const m = this.moment(this.state.m, variable);
      const v = this.moment(this.state.v, variable);
      const { beta1: b1, beta2: b2, eps, lr } = this;
      for (let i = 0; i < w.length; i++) {
        const gi = g[i];
        const mi = (m[i] = b1 * m[i] + (1 - b1) * gi);
        const vi = (v[i] = b2 * v[i] + (1 - b2) * gi * gi);
        w[i] = w[i] * decay - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps);
      }
      const next = tf.tensor(w, variable.shape, 'float32');
      variable.assign(next);
      next.dispose();
    }
  }

  private moment(store: Map<string, Float32Array>, v: tf.Variable): Float32Array {
    let a = store.get(v.name);
    if (!a) store.set(v.name, (a = new Float32Array(v.size)));
    return a;
  }

  /** For checkpoints: the moments and the step count. */
  getState(): AdamState {
    return this.state;
  }

  setState(s: AdamState): void {
    this.state = s;
  }
}
