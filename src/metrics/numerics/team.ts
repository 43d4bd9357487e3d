/**
 * Both cores for the O(n³) products of FID at Inception size: helper threads share the rows of
 * one tiled product (gemm.ts) with the calling thread. The call stays synchronous — the caller
 * computes strips too and then blocks on Atomics.wait (allowed on Node's main thread) — so the
 * linear algebra keeps plain function signatures.
 *
 * Work is handed out by an atomic strip counter rather than a fixed split: a helper that is
 * still starting (tsx registers itself in each worker) or busy simply takes fewer strips, and
 * one that never starts costs nothing, so a job can never wait on a thread that is not there.
 * Operands must live in SharedArrayBuffers (`sharedF64`); otherwise the product runs here.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ntAccumulate, type NtProduct } from './gemm.js';

/** Rows per strip handed out (a multiple of the 4-row tile). */
const STRIP = 32;
/**
 * Products under this many multiply-adds (~20 ms) run on the calling thread: 128-d metric features
 * never start a helper, and a run's job processes are not oversubscribed for nothing.
 */
const MIN_WORK = 3e7;

/** Control words of one job: next strip, strips in all, helpers inside the job, strips helpers took. */
export const enum Ctrl {
  Next = 0,
  Strips = 1,
  Active = 2,
  Helped = 3,
}

export interface TeamJob {
  product: NtProduct;
  ctrl: Int32Array;
  strip: number;
}

/** Threads for linear algebra, the caller included: SDD_LINALG_THREADS, else every core. */
export function teamThreads(): number {
  const env = Number(process.env.SDD_LINALG_THREADS);
  return Number.isInteger(env) && env > 0 ? env : availableParallelism();
}

let helpers: Worker[] | null = null;

function team(): Worker[] {
  if (helpers) return helpers;
  helpers = [];
  for (let i = 1; i < teamThreads(); i++) {
    const w = new Worker(new URL('./team_entry.mjs', import.meta.url));
    w.unref(); // helpers never keep a finished process alive
    w.on('error', () => undefined); // a helper that dies just stops taking strips
    helpers.push(w);
  }
  return helpers;
}

/** A Float64Array the helpers can see (a plain one when there are no helpers). */
export function sharedF64(length: number): Float64Array {
  return teamThreads() > 1 ? new Float64Array(new SharedArrayBuffer(length * 8)) : new Float64Array(length);
}

const isShared = (a: Float64Array) => a.buffer instanceof SharedArrayBuffer;

let helped = 0;

/** Strips of products that helper threads computed so far in this process (tests, benchmarks). */
export function helperStrips(): number {
  return helped;
}

/** Takes strips until none are left; used by the caller and by every helper. */
export function workStrips(job: TeamJob, helper = false): void {
  const { product, ctrl, strip } = job;
  const rowFrom = product.rowFrom ?? 0;
  const rowTo = product.rowTo ?? product.rows;
  for (;;) {
    const s = Atomics.add(ctrl, Ctrl.Next, 1);
    if (s >= ctrl[Ctrl.Strips]) return;
    if (helper) Atomics.add(ctrl, Ctrl.Helped, 1);
    const from = rowFrom + s * strip;
    ntAccumulate({ ...product, rowFrom: from, rowTo: Math.min(from + strip, rowTo) });
  }
}

/** ntAccumulate (C += alpha·X·Yᵀ), split over the team when the operands are shared and it pays. */
export function ntProduct(p: NtProduct): void {
  const rows = (p.rowTo ?? p.rows) - (p.rowFrom ?? 0);
  const work = rows * p.cols * p.kDim;
  if (teamThreads() < 2 || work < MIN_WORK || rows <= STRIP || !isShared(p.X) || !isShared(p.Y) || !isShared(p.C)) {
    ntAccumulate(p);
    return;
  }
  const ctrl = new Int32Array(new SharedArrayBuffer(16));
  ctrl[Ctrl.Strips] = Math.ceil(rows / STRIP);
  const job: TeamJob = { product: p, ctrl, strip: STRIP };
  for (const w of team()) w.postMessage(job);
  workStrips(job);
  // Strips are all taken; wait for helpers still inside one (they enter before taking any).
  for (let active = Atomics.load(ctrl, Ctrl.Active); active > 0; active = Atomics.load(ctrl, Ctrl.Active)) {
    Atomics.wait(ctrl, Ctrl.Active, active, 1000);
  }
  helped += Atomics.load(ctrl, Ctrl.Helped);
}

/** C = X·Yᵀ for n×n row-major X, Y (rows of C outside [rowFrom, rowTo) and skipped tiles are left as they were). */
export function gemmNT(
  X: Float64Array,
  Y: Float64Array,
  C: Float64Array,
  n: number,
  opts: Pick<NtProduct, 'part' | 'kFrom' | 'rowFrom' | 'rowTo'> = {},
): void {
  C.fill(0, (opts.rowFrom ?? 0) * n, (opts.rowTo ?? n) * n);
  ntProduct({ X, Y, C, rows: n, cols: n, kDim: n, ldx: n, ldy: n, ldc: n, ...opts });
}
