/**
 * Feature statistics for FID: mean and unbiased (N−1) covariance, accumulated in float64 batch by
 * batch (features never need to be in memory all at once). Values are shifted by the first
 * batch's mean before accumulating, which keeps the one-pass formula from cancelling. Each batch
 * adds Yᵀ·Y (upper triangle) as one tiled product over the team (team.ts): at 2048-d that is
 * the O(N·d²) part of FID and runs ~5× the row-by-row rank-1 loop.
 */
import { ntProduct, sharedF64 } from './numerics/team.js';

const MIN_BATCH = 16;

export class FeatureStats {
  n = 0;
  private shift: Float64Array | null = null;
  private readonly sum: Float64Array;
  /** Upper triangle of Σ (x−shift)(x−shift)ᵀ, full row-major storage. */
  private readonly outer: Float64Array;

  constructor(readonly dims: number) {
    this.sum = new Float64Array(dims);
    this.outer = sharedF64(dims * dims);
  }

  /** Adds `rows` feature vectors stored row-major in `x` (float32 or float64). */
  add(x: ArrayLike<number>, rows: number): void {
    const d = this.dims;
    if (x.length !== rows * d) throw new RangeError(`expected ${rows}×${d} values, got ${x.length}`);
    if (!this.shift) {
      this.shift = new Float64Array(d);
      for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) this.shift[j] += x[r * d + j] / rows;
    }
    if (rows < MIN_BATCH) {
      this.addRows(x, rows);
      return;
    }
    // Yᵀ, shifted: row j holds feature j of every row in the batch, so Yᵀ·(Yᵀ)ᵀ is an NT product.
    const yt = sharedF64(d * rows);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < d; j++) {
        const v = x[r * d + j] - this.shift[j];
        yt[j * rows + r] = v;
        this.sum[j] += v;
      }
    }
    // Tiles straddling the diagonal also write below it; covariance() reads j ≥ i only.
    ntProduct({
      X: yt,
      Y: yt,
      C: this.outer,
      rows: d,
      cols: d,
      kDim: rows,
      ldx: rows,
      ldy: rows,
      ldc: d,
      part: 'upper',
    });
    this.n += rows;
  }

  /** Rank-1 updates, for a handful of rows (a product's setup would cost more than it saves). */
  private addRows(x: ArrayLike<number>, rows: number): void {
    const d = this.dims;
    const shift = this.shift!;
    const y = new Float64Array(d);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < d; j++) y[j] = x[r * d + j] - shift[j];
      for (let i = 0; i < d; i++) {
        const yi = y[i];
        this.sum[i] += yi;
        const row = i * d;
        for (let j = i; j < d; j++) this.outer[row + j] += yi * y[j];
      }
    }
    this.n += rows;
  }

  mean(): Float64Array {
    const m = new Float64Array(this.dims);
    for (let j = 0; j < this.dims; j++) m[j] = (this.shift?.[j] ?? 0) + this.sum[j] / this.n;
    return m;
  }

  covariance(): Float64Array {
    if (this.n < 2) throw new RangeError(`covariance needs at least 2 samples, have ${this.n}`);
    const d = this.dims;
    const c = new Float64Array(d * d);
    for (let i = 0; i < d; i++) {
      for (let j = i; j < d; j++) {
        const v = (this.outer[i * d + j] - (this.sum[i] * this.sum[j]) / this.n) / (this.n - 1);
        c[i * d + j] = v;
        c[j * d + i] = v;
      }
    }
    return c;
  }
}
