/**
 * A finished run as the report's intervals read it (intervals.ts): its values, and on first use
 * its per-item values (artifacts/items.json) and FID features (artifacts/features.safetensors),
 * from which FID and KID are recomputed for any subset of items.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fidGram, fidOfRows, type FidGram } from '../metrics/fid_items.js';
import { kernelMatrices, mmd2Rows, type KernelMatrices } from '../metrics/kid.js';
import { asFloat32, readSafetensors } from '../util/safetensors.js';

/** One finished run as the report needs it; per-item values and features load on first use. */
export class RunData {
  private itemsCache: Record<string, unknown> | null | undefined;
  private gram: FidGram | null | undefined;
  private kernels: KernelMatrices | null | undefined;

  constructor(
    readonly id: string,
    readonly dir: string,
    readonly prompt: string,
    readonly seed: number,
    readonly values: Record<string, unknown>,
  ) {}

  value(metric: string): number | null {
    const v = this.values[metric];
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  }

  /** Per-item values of `key`, or null (older runs, methods without items). */
  items(key: string): number[] | null {
    if (this.itemsCache === undefined) {
      const p = join(this.dir, 'artifacts', 'items.json');
      this.itemsCache = existsSync(p) ? (JSON.parse(readFileSync(p, 'utf-8')) as Record<string, unknown>) : null;
    }
    const v = this.itemsCache?.[key];
    return Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : null;
  }

  private features(): { original: Float32Array; edited: Float32Array; n: number; d: number } | null {
    const p = join(this.dir, 'artifacts', 'features.safetensors');
    if (!existsSync(p)) return null;
    const st = readSafetensors(p);
    const o = st.tensors.get('original');
    const e = st.tensors.get('edited');
    if (!o || !e || o.shape.length !== 2 || e.shape.join() !== o.shape.join()) return null;
    return { original: asFloat32(o), edited: asFloat32(e), n: o.shape[0], d: o.shape[1] };
  }

  /** Item count of the set-level metric's features (null without features). */
  setItems(metric: 'fid' | 'kid'): number | null {
    if (metric === 'fid') return this.fidGram()?.n ?? null;
    return this.kidKernels()?.n ?? null;
  }

  /** FID or KID of items `idx` (edited vs original, paired), as evaluateEdits computes it. */
  setValue(metric: 'fid' | 'kid', idx: Int32Array): number {
    return metric === 'fid' ? fidOfRows(this.fidGram()!, idx) : mmd2Rows(this.kidKernels()!, idx);
  }

  private fidGram(): FidGram | null {
    if (this.gram === undefined) {
      const f = this.features();
      this.gram = f ? fidGram(f.edited, f.original, f.n, f.d) : null;
    }
    return this.gram;
  }

  private kidKernels(): KernelMatrices | null {
    if (this.kernels === undefined) {
      const f = this.features();
      this.kernels = f ? kernelMatrices(f.edited, f.original, f.n, f.d) : null;
    }
    return this.kernels;
  }
}
