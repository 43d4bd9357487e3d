/**
 * Seeded pseudo-random numbers for everything outside tfjs (data sampling, splits, bootstrap):
 * sfc32 seeded through splitmix32, so nearby seeds give unrelated streams.
 */
import { sha256 } from './hash.js';
/**
 * An independent seeded stream per purpose (`name`) under one run seed, so adding draws to one
 * purpose never shifts another.
 */
export function streamRng(seed: number, name: string): Rng {
  return new Rng(parseInt(sha256(`${seed}:${name}`).slice(0, 8), 16));
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const mix = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix();
    for (let i = 0; i < 12; i++) this.next();
  }

  /** Uniform in [0, 1). */
  next(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t / 4294967296;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  }
}

/**
 * The seed to hand a tfjs random op. tfjs draws `seed ? seed : Math.random()`, so seed 0 silently
 * means "unseeded": every seed-0 run differed from the last. 0 maps to 2^31 − 1 (outside what
 * `Rng.int(2 ** 31)` and the parameter seeds produce otherwise, so it collides with no other seed);
 * every other seed is passed through, keeping earlier results.
 */
export function tfSeed(seed: number): number {
  if (!Number.isFinite(seed)) throw new Error(`random seed must be a finite number, got ${seed}`);
  return seed === 0 ? 2 ** 31 - 1 : seed;
}
