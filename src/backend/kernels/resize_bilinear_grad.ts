/**
 * ResizeBilinearGrad for the host backends (cpu, wasm), registered over the built-ins by
 * cpu_fixes.ts.
 *
 * tfjs 4.22's built-ins (tfjs-backend-cpu's loop, tfjs-backend-wasm's C++, which is not even passed
 * the attribute) ignore halfPixelCenters: they route dy as if the forward had sampled at r · scale,
 * not at (r + ½) · scale − ½. Every resize of ours uses half-pixel centres (pytorch-fid's and
 * CLIP's F.interpolate, the paper world's 1024 → 512), so gradients through them were wrong: a 2×
 * downsample sends all of dy to the even pixels instead of half to each of the pair. Here dx is the
 * exact adjoint of the cpu forward: each dy pixel goes to the four source pixels the forward read,
 * with the forward's own weights, by the forward's own index rule (the edge clamps included).
 * The cpu backend's 4.22 kernel also labels dx [batch, width, height, depth]; this one is dx's shape.
 * One pass over dy, O(dy), in float64, rounded once to float32.
 */
import type { KernelBackend, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { kernelAttrs } from './custom_kernel.js';

interface ResizeAttrs {
  alignCorners: boolean;
  halfPixelCenters?: boolean;
}

/** Per output index along one axis: the two source indices the forward reads and the weight of `hi`. */
interface AxisTaps {
  lo: Int32Array;
  hi: Int32Array;
  frac: Float64Array;
}

/** The taps of tfjs-backend-cpu's ResizeBilinear along one axis (its arithmetic, in its order). */
function bilinearTaps(inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean): AxisTaps {
  const effIn = alignCorners && outSize > 1 ? inSize - 1 : inSize;
  const effOut = alignCorners && outSize > 1 ? outSize - 1 : outSize;
  const ratio = effIn / effOut;
  const taps = { lo: new Int32Array(outSize), hi: new Int32Array(outSize), frac: new Float64Array(outSize) };
  for (let o = 0; o < outSize; o++) {
    const src = halfPixelCenters ? ratio * (o + 0.5) - 0.5 : ratio * o;
    // Above the first centre (src < 0) both taps are pixel 0, whatever the (negative) weight.
    const lo = Math.max(0, Math.floor(src));
    taps.lo[o] = lo;
    taps.hi[o] = Math.min(inSize - 1, Math.ceil(src));
    taps.frac[o] = src - lo;
  }
  return taps;
}

/** dx of images [batch, xh, xw, depth] from dy [batch, yh, yw, depth] (row-major values). */
function bilinearAdjoint(
  dy: ArrayLike<number>,
  imagesShape: number[],
  dyShape: number[],
  attrs: ResizeAttrs,
): Float32Array {
  const [batch, xh, xw, depth] = imagesShape;
  const [, yh, yw] = dyShape;
  const half = attrs.halfPixelCenters ?? false;
  const rows = bilinearTaps(xh, yh, attrs.alignCorners, half);
  const cols = bilinearTaps(xw, yw, attrs.alignCorners, half);
  const acc = new Float64Array(batch * xh * xw * depth);
  let i = 0;
  for (let b = 0; b < batch; b++) {
    const base = b * xh;
    for (let r = 0; r < yh; r++) {
      const top = (base + rows.lo[r]) * xw;
      const bottom = (base + rows.hi[r]) * xw;
      const rf = rows.frac[r];
      for (let c = 0; c < yw; c++) {
        const cf = cols.frac[c];
        // The forward: top = TL + (TR − TL)·cf, bottom likewise, out = top + (bottom − top)·rf.
        const w = [(1 - rf) * (1 - cf), (1 - rf) * cf, rf * (1 - cf), rf * cf];
        const at = [top + cols.lo[c], top + cols.hi[c], bottom + cols.lo[c], bottom + cols.hi[c]];
        for (let d = 0; d < depth; d++, i++) {
          const g = dy[i];
          for (let k = 0; k < 4; k++) acc[at[k] * depth + d] += g * w[k];
        }
      }
    }
  }
  return Float32Array.from(acc);
}

/** The kernel on any backend whose tensors the host reads synchronously (cpu, wasm). */
export const hostResizeBilinearGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const { images, dy } = inputs as { images: TensorInfo; dy: TensorInfo };
  const host = backend as KernelBackend;
  const dx = bilinearAdjoint(
    host.readSync(dy.dataId) as Float32Array,
    images.shape,
    dy.shape,
    kernelAttrs<ResizeAttrs>(attrs),
  );
  return { dataId: host.write(dx, images.shape, 'float32'), shape: images.shape, dtype: 'float32' };
};
