/**
 * Adam / AdamW, two ways with one update rule and one state format:
 *   HostAdam   one pass over host arrays per step (CPU backends, where it is faster);
 *   DeviceAdam the same update as tensor ops with the moments on the device (GPU backends, where
 *              downloading every weight every step would dominate).
 * `createAdam` picks by backend; algorithms never choose. HostAdam: tfjs's optimizer issues ~10 kernels per
 * variable (≈1000 tiny kernels for a small U-Net: 10–15% of a wasm training step); here each
 * variable costs one read, one loop and one write. Matches PyTorch's Adam/AdamW update:
 *   m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  w ← w·(1 − lr·wd) − lr·m̂/(√v̂ + ε)
 * (weight decay decoupled, as AdamW; wd = 0 gives Adam). Moments live on the host as float32.
 */
import * as tf from '@tensorflow/tfjs-core';
import { activeBackend, backendByTfName } from '../backend/index.js';
import { fusedAdamStep, hasFusedAdam } from '../backend/kernels/adam.js';

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

/** What training loops and checkpoints use of an optimizer. */
export interface AdamOptimizer {
  lr: number;
  readonly step: number;
  /** One update from gradients keyed by variable name (as tf.variableGrads returns them). */
  apply(vars: tf.Variable[], grads: Record<string, tf.Tensor | Float32Array>): Promise<void>;
  /** For checkpoints: the moments (keyed by variable name) and the step count, on the host. */
  getState(): Promise<AdamState>;
  setState(s: AdamState): void;
  dispose(): void;
}

/** HostAdam where the backend's facts say so (the CPU backends: wasm, cpu), DeviceAdam on the others. */
export function createAdam(opts: AdamOptions): AdamOptimizer {
  const name = activeBackend()?.tfName ?? tf.getBackend();
  return backendByTfName(name)?.hostOptimizer ? new HostAdam(opts) : new DeviceAdam(opts);
}

/** The hyperparameters both implementations share (PyTorch's defaults). */
abstract class AdamHyper {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  lr: number;

  constructor(opts: AdamOptions) {
    this.lr = opts.lr;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
  }
}

export class HostAdam extends AdamHyper implements AdamOptimizer {
  private state: AdamState = { step: 0, m: new Map(), v: new Map() };

  get step(): number {
    return this.state.step;
  }

  /** Applies one update from gradients keyed by variable name (as tf.variableGrads returns them). */
  async apply(vars: tf.Variable[], grads: Record<string, tf.Tensor | Float32Array>): Promise<void> {
    const t = ++this.state.step;
    const c1 = 1 - this.beta1 ** t;
    const c2 = 1 - this.beta2 ** t;
    const decay = 1 - this.lr * this.weightDecay;
    for (const variable of vars) {
      const g0 = grads[variable.name];
      if (g0 === undefined) continue; // not on the loss path this step
      const g = g0 instanceof Float32Array ? g0 : ((await g0.data()) as Float32Array);
      const w = ((await variable.data()) as Float32Array).slice();
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
  async getState(): Promise<AdamState> {
    return this.state;
  }

  setState(s: AdamState): void {
    this.state = s;
  }

  dispose(): void {}
}

/**
 * The same update on the device: per variable a handful of fused elementwise ops, moments kept as
 * tf.Variables. Nothing is read back except by getState (checkpoints).
 */
export class DeviceAdam extends AdamHyper implements AdamOptimizer {
  private t = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  /** Restored moments, uploaded in the variable's shape on first use (checkpoints store them flat). */
  private restored: AdamState | null = null;

  get step(): number {
    return this.t;
  }

  async apply(vars: tf.Variable[], grads: Record<string, tf.Tensor | Float32Array>): Promise<void> {
    const t = ++this.t;
    const c1 = 1 - this.beta1 ** t;
    const c2 = 1 - this.beta2 ** t;
    const decay = 1 - this.lr * this.weightDecay;
    const { beta1: b1, beta2: b2, eps, lr } = this;
    const fused = hasFusedAdam(tf.getBackend());
    for (const variable of vars) {
      const g0 = grads[variable.name];
      if (g0 === undefined) continue;
      const m = this.moment(this.m, variable, this.restored?.m);
      const v = this.moment(this.v, variable, this.restored?.v);
      tf.tidy(() => {
        const g = g0 instanceof Float32Array ? tf.tensor(g0, variable.shape) : g0;
        if (fused) {
          // webgpu: the same update in 3 dispatches and no scalar uploads (backend/kernels/adam.ts).
          const [mf, vf, wf] = fusedAdamStep(variable, g, m, v, {
            beta1: b1,
            beta2: b2,
            stepSize: lr / c1,
            c2,
            eps,
            decay,
          });
          m.assign(tf.reshape(mf, variable.shape));
          v.assign(tf.reshape(vf, variable.shape));
          variable.assign(tf.reshape(wf, variable.shape));
          return;
        }
        const mi = tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1));
        const vi = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2));
        const upd = tf.div(tf.mul(mi, lr / c1), tf.add(tf.sqrt(tf.div(vi, c2)), eps));
        m.assign(mi);
        v.assign(vi);
        variable.assign(tf.sub(decay === 1 ? variable : tf.mul(variable, decay), upd));
      });
    }
  }

  private moment(store: Map<string, tf.Variable>, w: tf.Variable, restored?: Map<string, Float32Array>): tf.Variable {
    let a = store.get(w.name);
    if (!a) {
      const saved = restored?.get(w.name);
      // tf.variable keeps its own reference to the initial value's data: the initial tensor itself is
      // released here, or it stays counted for the rest of the run (2 tensors per trained variable).
      const init = saved ? tf.tensor(saved, w.shape) : tf.zerosLike(w);
      a = tf.variable(init, false);
      init.dispose();
      store.set(w.name, a);
    }
    return a;
  }

  async getState(): Promise<AdamState> {
    const read = async (store: Map<string, tf.Variable>, restored?: Map<string, Float32Array>) => {
      const out = new Map(restored);
      for (const [k, x] of store) out.set(k, (await x.data()) as Float32Array);
      return out;
    };
    return { step: this.t, m: await read(this.m, this.restored?.m), v: await read(this.v, this.restored?.v) };
  }

  setState(s: AdamState): void {
    this.dispose();
    this.t = s.step;
    this.restored = s;
  }

  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
    this.m.clear();
    this.v.clear();
  }
}
