/**
 * What the two webgpu convolution-backprop programs (webgpu_conv_filter.ts, webgpu_conv_input.ts)
 * share: the output tile of one workgroup and its WGSL, an implicit GEMM C[M, N] = Σ_k A[k, m]·B[k, n]
 * staged BK rows of K at a time in workgroup memory. Each thread keeps a 4 × 4 block of C in
 * registers (TM × TN), so a 64 × 64 tile takes 256 threads. The programs differ only in how they
 * gather A and B from the convolution's tensors and where they write C.
 */

/** Rows of K staged per step. */
export const BK = 16;
/** Outputs per thread along M and N. */
const TM = 4;
const TN = 4;

/** A workgroup's output tile: BM × BN outputs, NT threads. */
export interface Tile {
  bm: number;
  bn: number;
  nt: number;
}

/** The smallest of 16, 32, 64 that covers `n` (64 beyond): narrow outputs waste fewer threads. */
const side = (n: number, min: number) => (n <= min ? min : n <= 32 ? 32 : 64);

/** The tile for an M × N output (M ≥ 32 rows per tile: every thread then loads whole rows of A and B). */
export function tileFor(m: number, n: number): Tile {
  const bm = side(m, 32);
  const bn = side(n, 16);
  return { bm, bn, nt: (bm / TM) * (bn / TN) };
}

/**
 * The tile's constants and workgroup arrays: As[kk·AS + mm] and Bs[kk·BS + nn], K-major, their rows
 * AS = BM + pad and BS = BN + pad apart. A program whose consecutive threads store consecutive kk
 * pads by 1, so that they hit different banks of workgroup memory (BM and BN are multiples of 32).
 */
export function tileDecls({ bm, bn, nt }: Tile, pad: 0 | 1): string {
  return `
      const BM = ${bm}; const BN = ${bn}; const BK = ${BK}; const NT = ${nt};
      const AS = ${bm + pad}; const BS = ${bn + pad};
      var<workgroup> As : array<f32, ${BK * (bm + pad)}>;
      var<workgroup> Bs : array<f32, ${BK * (bn + pad)}>;
      var<private> acc : array<vec4<f32>, ${TM}>;`;
}

/**
 * One step of the product over the staged rows, between the two barriers that fence the tiles;
 * (tm, tn) is the thread's first output in the tile.
 */
export const MULTIPLY = `
      fn multiplyTiles(tm : i32, tn : i32) {
        workgroupBarrier();
        for (var kk = 0; kk < BK; kk++) {
          let a = kk * AS + tm;
          let b = kk * BS + tn;
          let av = vec4<f32>(As[a], As[a + 1], As[a + 2], As[a + 3]);
          let bv = vec4<f32>(Bs[b], Bs[b + 1], Bs[b + 2], Bs[b + 3]);
          acc[0] += av.x * bv;
          acc[1] += av.y * bv;
          acc[2] += av.z * bv;
          acc[3] += av.w * bv;
        }
        workgroupBarrier();
      }
      // The thread's first output (row, column) within its workgroup's tile.
      fn threadTm() -> i32 { return (i32(localIndex) / (BN / ${TN})) * ${TM}; }
      fn threadTn() -> i32 { return (i32(localIndex) % (BN / ${TN})) * ${TN}; }`;

/**
 * Goes before a program's stores. Reading a uniform keeps tfjs's uniform binding in the shader (the
 * compiler drops unused bindings, and tfjs always binds it); outShape.x is never negative.
 */
export const KEEP_UNIFORMS = `if (uniforms.outShape.x < 0) { return; }`;

/** The numbers of a program's constants joined by '_': its shader key (tfjs keys pipelines by rank only). */
export function numbersOf(constants: string): string {
  return (constants.match(/-?\d+/g) ?? []).join('_');
}

/** The fields of a tfjs webgpu program whose workgroups are laid out by hand (tfjs's is flat). */
export abstract class TiledProgram {
  readonly workgroupSize: [number, number, number];
  readonly dispatchLayout: { x: number[] };
  abstract readonly variableNames: string[];
  abstract readonly shaderKey: string;

  constructor(
    readonly outputShape: number[],
    readonly tile: Tile,
    readonly dispatch: [number, number, number],
  ) {
    this.workgroupSize = [tile.nt, 1, 1];
    // A flat layout: tfjs then calls main(index), which these programs ignore (they use the ids).
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
  }

  abstract getUserCode(): string;
}
