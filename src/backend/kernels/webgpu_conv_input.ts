/**
 * Conv2DBackpropInput (NHWC) on webgpu as a tiled implicit GEMM (issue #32; tfjs-backend-webgpu
 * 4.22's default is a naive program, one thread per dx element looping over the whole filter).
 *
 * dx[b, i, j, ci] = Σ dy[b, oy, ox, co]·w[ky, kx, ci, co] over oy·s + ky = i + pad (and alike for
 * x). For stride s > 1 most (oy, ky) pairs miss, so dx is taken by output phase (as the wasm kernel,
 * conv2d_backprop_input.ts): the rows i with (i + pad) mod s = r receive only the taps ky = r, r + s,
 * …, from dy rows q − j, where i = q·s + r − pad: per phase a stride-1 GEMM of [pixels of the
 * phase, ci] = Σ over its taps and co. All s_h·s_w phases run in one dispatch (workgroup z = phase)
 * and each writes its own dx pixels, so there is no interleaving pass and no work on zeros.
 */
import type { backend_util } from '@tensorflow/tfjs-core';
import { BK, KEEP_UNIFORMS, MULTIPLY, numbersOf, TiledProgram, tileDecls, tileFor } from './webgpu_conv_gemm.js';

/** Along one axis, phase r: its taps, first dy-aligned index q and count of dx indices. */
interface AxisPhase {
  taps: number;
  qMin: number;
  count: number;
}

function axisPhase(r: number, s: number, k: number, pad: number, size: number): AxisPhase {
  const qMin = Math.ceil((pad - r) / s);
  const qMax = Math.floor((size - 1 + pad - r) / s);
  return { taps: Math.max(0, Math.ceil((k - r) / s)), qMin, count: Math.max(0, qMax - qMin + 1) };
}

/** Each phase (ry, rx), ry-major: [taps y, taps x, qMin y, qMin x] and [count y, count x]. */
function phases(info: backend_util.Conv2DInfo): Array<{ y: AxisPhase; x: AxisPhase }> {
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, inHeight, inWidth } = info;
  const out = [];
  for (let ry = 0; ry < sh; ry++) {
    for (let rx = 0; rx < sw; rx++) {
      out.push({
        y: axisPhase(ry, sh, kh, info.padInfo.top, inHeight),
        x: axisPhase(rx, sw, kw, info.padInfo.left, inWidth),
      });
    }
  }
  return out;
}

/** dx [b, H, W, ci] of one call: workgroups (ci tiles, pixel tiles of the largest phase, phases). */
export class InputGemmProgram extends TiledProgram {
  readonly variableNames = ['Dy', 'Wt'];
  readonly shaderKey: string;
  private readonly phaseList: Array<{ y: AxisPhase; x: AxisPhase }>;

  constructor(private readonly info: backend_util.Conv2DInfo) {
    const list = phases(info);
    const pixels = Math.max(...list.map((p) => p.y.count * p.x.count)) * info.batchSize;
    const tile = tileFor(pixels, info.inChannels);
    const dispatch: [number, number, number] = [
      Math.ceil(info.inChannels / tile.bn),
      Math.ceil(pixels / tile.bm),
      list.length,
    ];
    super([info.batchSize, info.inHeight, info.inWidth, info.inChannels], tile, dispatch);
    this.phaseList = list;
    this.shaderKey = `sdd_conv_dx_${numbersOf(this.constants())}`;
  }

  private constants(): string {
    const { batchSize, inHeight, inWidth, inChannels, outChannels, outHeight, outWidth } = this.info;
    const { strideHeight, strideWidth, filterWidth } = this.info;
    const vec = (f: (p: { y: AxisPhase; x: AxisPhase }) => number[]) =>
      this.phaseList.map((p) => `vec4<i32>(${f(p).join(', ')})`).join(', ');
    const n = this.phaseList.length;
    return `
      const B = ${batchSize}; const H = ${inHeight}; const W = ${inWidth}; const CI = ${inChannels};
      const CO = ${outChannels}; const OH = ${outHeight}; const OW = ${outWidth};
      const SH = ${strideHeight}; const SW = ${strideWidth}; const KW = ${filterWidth};
      const PT = ${this.info.padInfo.top}; const PL = ${this.info.padInfo.left};
      const CO_STEPS = ${Math.ceil(outChannels / BK)};
      const PHASE_TAPS = array<vec4<i32>, ${n}>(${vec((p) => [p.y.taps, p.x.taps, p.y.qMin, p.x.qMin])});
      const PHASE_SIZE = array<vec4<i32>, ${n}>(${vec((p) => [p.y.count, p.x.count, 0, 0])});`;
  }

  getUserCode(): string {
    // Padded tiles: consecutive threads store consecutive kk (they read consecutive channels).
    return `${this.constants()}${tileDecls(this.tile, 1)}${MULTIPLY}${INPUT_MAIN}`;
  }
}

/**
 * The phase's tap counts are read through workgroup memory (workgroupUniformLoad) so that the tap
 * loop, which holds barriers, is uniform control flow. A loads: the thread's channel column kk is
 * fixed and its pixels step by NT/BK; consecutive threads read consecutive channels of dy. B loads:
 * w[ky, kx, ci, co] along co likewise.
 */
const INPUT_MAIN = `
      var<workgroup> wgTaps : vec2<i32>;
      // The dy pixels this thread loads, fixed over the loops: (b·OH, qy, qx) or b = −1 (none).
      var<private> loadPix : array<vec3<i32>, BM * BK / NT>;

      // Pixel p of phase ph as (b, qy, qx), qy/qx aligned with dy (dx row = qy·SH + ry − PT).
      fn phasePixel(p : i32, t : vec4<i32>, sz : vec4<i32>) -> vec3<i32> {
        let per = sz.x * sz.y;
        let b = p / per;
        let r = p - b * per;
        let y = r / sz.y;
        return vec3<i32>(b, t.z + y, t.w + r - y * sz.y);
      }

      fn main(index : i32) {
        let tid = i32(localIndex);
        let ph = i32(workgroupId.z);
        let ry = ph / SW;
        let rx = ph % SW;
        let t = PHASE_TAPS[ph];
        let sz = PHASE_SIZE[ph];
        let pixels = B * sz.x * sz.y;
        let m0 = i32(workgroupId.y) * BM;
        let n0 = i32(workgroupId.x) * BN;
        if (tid == 0) { wgTaps = t.xy; }
        let taps = workgroupUniformLoad(&wgTaps);
        let kk = tid % BK;
        for (var i = 0; i < BM * BK / NT; i++) {
          let p = m0 + tid / BK + i * (NT / BK);
          var q = vec3<i32>(-1, 0, 0);
          if (p < pixels) { q = phasePixel(p, t, sz); q.x = q.x * OH; }
          loadPix[i] = q;
        }
        for (var tap = 0; tap < taps.x * taps.y; tap++) {
          let jy = tap / taps.y;
          let jx = tap - jy * taps.y;
          let wBase = ((ry + jy * SH) * KW + rx + jx * SW) * CI;
          for (var c0 = 0; c0 < CO_STEPS * BK; c0 += BK) {
            let c = c0 + kk;
            for (var i = 0; i < BM * BK / NT; i++) {
              let q = loadPix[i];
              let oy = q.y - jy;
              let ox = q.z - jx;
              var v = 0.0;
              if (q.x >= 0 && c < CO && oy >= 0 && oy < OH && ox >= 0 && ox < OW) {
                v = Dy[((q.x + oy) * OW + ox) * CO + c];
              }
              As[kk * AS + tid / BK + i * (NT / BK)] = v;
            }
            for (var nn = tid / BK; nn < BN; nn += NT / BK) {
              let n = n0 + nn;
              var v = 0.0;
              if (n < CI && c < CO) { v = Wt[(wBase + n) * CO + c]; }
              Bs[kk * BS + nn] = v;
            }
            multiplyTiles(threadTm(), threadTn());
          }
        }
        ${KEEP_UNIFORMS}
        let tm = threadTm();
        let tn = threadTn();
        for (var i = 0; i < 4; i++) {
          let p = m0 + tm + i;
          if (p >= pixels) { continue; }
          let q = phasePixel(p, t, sz);
          let out = ((q.x * H + q.y * SH + ry - PT) * W + q.z * SW + rx - PL) * CI;
          for (var j = 0; j < 4; j++) {
            let n = n0 + tn + j;
            if (n < CI) { result[out + n] = acc[i][j]; }
          }
        }
      }`;
