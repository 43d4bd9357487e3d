/**
 * Named trainable parameters, created on first use with a seeded initialiser, so a model is
 * written as plain functions (diffusers-style explicit forward code) and still has a stable,
 * saveable parameter set.
 *
 * A store loaded from a file (Params.loaded) is strict: it never creates a parameter, so a file
 * that lacks one of the model's tensors is an error, never a silently random model. `verify` runs
 * the model once and also names the tensors of the file that the model never asked for.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors.js';
import { sha256 } from '../util/hash.js';
import { tfSeed } from '../util/rng.js';

export type Init = { kind: 'normal'; std: number } | { kind: 'zeros' } | { kind: 'ones' };

/** A weights file that does not fit the model (missing, unexpected or mis-shaped tensors). */
export class ParamsError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'ParamsError';
  }
}

export interface LoadedTensor {
  shape: number[];
  values: Float32Array;
}

/** What one `verify` forward saw. */
interface Trace {
  used: Set<string>;
  /** Name → a zero stand-in of the shape the model asked for, so the forward can go on. */
  missing: Map<string, tf.Variable>;
  mismatched: Map<string, tf.Variable>;
  mismatchText: string[];
}

let instances = 0;

/** `n things: a, b, c, … (n)` with the first few names, on one line. */
function few(what: string, names: string[]): string {
  const shown = names.slice(0, 4).join(', ');
  return `${what} ${names.length} (${shown}${names.length > 4 ? `, … ${names.length - 4} more` : ''})`;
}

export class Params {
  /** Keyed by the model's own parameter name ('down0.res.conv1.weight'). */
  readonly vars = new Map<string, tf.Variable>();
  /** tfjs variable names are global to the engine: each store gets its own prefix. */
  readonly scope = `params${instances++}`;
  #source: string | null = null;
  #trace: Trace | null = null;
  /** memo(): key → the derived tensors and the data of the parameters they were made from. */
  #memos = new Map<string, { from: readonly object[]; value: tf.Tensor[] }>();

  constructor(readonly seed: number) {}

  /** A strict store holding a file's tensors (non-trainable): get() never creates a parameter. */
  static loaded(source: string, tensors: Iterable<readonly [string, LoadedTensor]>): Params {
    const p = new Params(0);
    p.#source = source;
    for (const [name, t] of tensors) {
      const v = tf.tensor(t.values, t.shape);
      p.vars.set(name, tf.variable(v, false, `${p.scope}/${name}`));
      v.dispose();
    }
    return p;
  }

  /** The file a loaded store came from; null for a store made for training. */
  get source(): string | null {
    return this.#source;
  }

  get(name: string, shape: number[], init: Init): tf.Variable {
    const found = this.vars.get(name);
    if (this.#source !== null) return this.#strictGet(name, shape, found);
    if (found) {
      if (found.shape.join() !== shape.join()) throw new Error(`param ${name}: shape ${found.shape} ≠ ${shape}`);
      return found;
    }
    // Per-parameter seed from its name: adding a layer does not reshuffle the others.
    const seed = (this.seed * 1_000_003 + parseInt(sha256(name).slice(0, 8), 16)) % 2 ** 31;
    const v = tf.tidy(() =>
      tf.variable(
        init.kind === 'normal'
          ? tf.randomNormal(shape, 0, init.std, 'float32', tfSeed(seed))
          : init.kind === 'zeros'
            ? tf.zeros(shape)
            : tf.ones(shape),
        true,
        `${this.scope}/${name}`,
      ),
    );
    this.vars.set(name, v);
    return v;
  }

  /** A loaded store: the file's tensor, or (while verifying) a recorded problem and a stand-in. */
  #strictGet(name: string, shape: number[], found: tf.Variable | undefined): tf.Variable {
    const trace = this.#trace;
    const same = found !== undefined && found.shape.join() === shape.join();
    if (trace) {
      if (same) {
        trace.used.add(name);
        return found;
      }
      const book = found ? trace.mismatched : trace.missing;
      let stand = book.get(name);
      if (!stand) {
        if (found) trace.mismatchText.push(`${name} is [${found.shape}], the model expects [${shape}]`);
        stand = tf.tidy(() => tf.variable(tf.zeros(shape), false, `${this.scope}/?${book.size}/${name}`));
        book.set(name, stand);
      }
      if (found) trace.used.add(name);
      return stand;
    }
    if (!found)
      throw new ParamsError(
        `${this.#source}: has no tensor ${name} [${shape}] (the model needs it; the file has ${this.vars.size} others)`,
      );
    if (!same) throw new ParamsError(`${this.#source}: ${name} is [${found.shape}], the model expects [${shape}]`);
    return found;
  }

  /**
   * Strict loading: runs `forward` (the model on a tiny input) once and throws one ParamsError line
   * naming the file and its missing, unexpected (never asked for) and mis-shaped tensors.
   */
  verify(forward: (p: Params) => unknown): void {
    if (this.#source === null) throw new Error('Params.verify: only a loaded store can be verified');
    const trace: Trace = { used: new Set(), missing: new Map(), mismatched: new Map(), mismatchText: [] };
    this.#trace = trace;
    let failure: Error | null = null;
    try {
      tf.tidy(() => {
        forward(this);
      });
    } catch (e) {
      failure = e as Error;
    } finally {
      this.#trace = null;
      for (const v of [...trace.missing.values(), ...trace.mismatched.values()]) v.dispose();
    }
    const problems: string[] = [];
    if (trace.missing.size) problems.push(few('missing', [...trace.missing.keys()]));
    // After a failed forward, tensors the model did not reach yet are not known to be unused.
    const unexpected = failure ? [] : [...this.vars.keys()].filter((k) => !trace.used.has(k));
    if (unexpected.length) problems.push(few('unexpected', unexpected));
    if (trace.mismatchText.length) problems.push(few('wrong shape', trace.mismatchText));
    if (failure) problems.push(`the model failed on it (${failure.message.split('\n')[0].slice(0, 120)})`);
    if (problems.length) {
      const of = `${trace.used.size + trace.missing.size} model tensors, ${this.vars.size} in the file`;
      throw new ParamsError(`${this.#source}: does not fit the model (${of}): ${problems.join('; ')}`);
    }
  }

  /**
   * Tensors derived from parameters alone (a BatchNorm folded into a scale and shift), made once
   * and kept until a source changes (an assign gives a variable new data) or the store is disposed:
   * a frozen evaluator (Inception, ArcFace) otherwise recomputes them, a few kernels per layer, on
   * every forward. The same ops run once, so the values are the same. They are constants to
   * autodiff: no gradient reaches the sources through them (only for models that are never trained).
   */
  memo<T extends tf.Tensor[]>(key: string, sources: readonly tf.Tensor[], make: () => T): T {
    const from = sources.map((t) => t.dataId);
    const hit = this.#memos.get(key);
    if (hit && hit.from.length === from.length && hit.from.every((d, i) => d === from[i])) return hit.value as T;
    if (hit) tf.dispose(hit.value);
    const value = tf.tidy(make);
    for (const t of value) tf.keep(t);
    this.#memos.set(key, { from, value });
    return value;
  }

  list(): tf.Variable[] {
    return [...this.vars.values()];
  }

  count(): number {
    return this.list().reduce((a, v) => a + v.size, 0);
  }

  /**
   * A store of seeded random weights (normal / zeros / ones as each model's get() says) for every
   * tensor `touch` (the model on a tiny input) reads: a model at full size with no file, for
   * timing (paper-random) or training.
   */
  static created(seed: number, touch: (p: Params) => unknown): Params {
    const p = new Params(seed);
    tf.tidy(() => {
      touch(p);
    });
    return p;
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    for (const m of this.#memos.values()) tf.dispose(m.value);
    this.#memos.clear();
  }
}
