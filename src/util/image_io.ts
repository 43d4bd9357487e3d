/** PNG files and contact sheets (grids) for rendered or generated images (HWC floats in [0, 1]). */
import { mkdirSync } from 'node:fs';
import { writeFileAtomic } from './atomic.js';
import { dirname } from 'node:path';
import { PNG } from 'pngjs';

export function toPng(img: Float32Array, width: number, height: number): Buffer {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) png.data[i * 4 + c] = Math.round(Math.min(1, Math.max(0, img[i * 3 + c])) * 255);
    png.data[i * 4 + 3] = 255;
  }
  return PNG.sync.write(png);
}

/** Tiles images (each size×size) into rows × cols, scaled up by `zoom` (nearest) for viewing. */
export function grid(
  images: Float32Array[],
  size: number,
  cols: number,
  zoom = 4,
  gap = 2,
): { data: Float32Array; width: number; height: number } {
  const rows = Math.ceil(images.length / cols);
  const cell = size * zoom + gap;
  const width = cols * cell + gap;
  const height = rows * cell + gap;
  const data = new Float32Array(width * height * 3).fill(1);
  images.forEach((img, k) => {
    const ox = gap + (k % cols) * cell;
    const oy = gap + Math.floor(k / cols) * cell;
    for (let y = 0; y < size * zoom; y++) {
      for (let x = 0; x < size * zoom; x++) {
        const s = (Math.floor(y / zoom) * size + Math.floor(x / zoom)) * 3;
        const d = ((oy + y) * width + ox + x) * 3;
        data[d] = img[s];
        data[d + 1] = img[s + 1];
        data[d + 2] = img[s + 2];
      }
    }
  });
  return { data, width, height };
}

export function writePng(path: string, img: Float32Array, width: number, height: number): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, toPng(img, width, height));
}

/**
 * Bilinear resize of an HWC float image on the host, half-pixel centres and clamped edges (PyTorch's
 * interpolate(mode='bilinear', align_corners=False) without antialias; tfjs's resizeBilinear with
 * halfPixelCenters). For loaders that must not read tensors back synchronously.
 */
export function resizeBilinearHost(
  src: Float32Array,
  h: number,
  w: number,
  c: number,
  oh: number,
  ow: number,
): Float32Array {
  const out = new Float32Array(oh * ow * c);
  const axis = (o: number, n: number, on: number) => {
    const x = Math.max(0, ((o + 0.5) * n) / on - 0.5);
    const lo = Math.min(Math.floor(x), n - 1);
    return { lo, hi: Math.min(lo + 1, n - 1), f: x - lo };
  };
  for (let y = 0; y < oh; y++) {
    const ay = axis(y, h, oh);
    for (let x = 0; x < ow; x++) {
      const ax = axis(x, w, ow);
      for (let k = 0; k < c; k++) {
        const at = (yy: number, xx: number) => src[(yy * w + xx) * c + k];
        const top = at(ay.lo, ax.lo) + (at(ay.lo, ax.hi) - at(ay.lo, ax.lo)) * ax.f;
        const bottom = at(ay.hi, ax.lo) + (at(ay.hi, ax.hi) - at(ay.hi, ax.lo)) * ax.f;
        out[(y * ow + x) * c + k] = top + (bottom - top) * ay.f;
      }
    }
  }
  return out;
}

/** The centred square crop of an HWC image. */
export function centreSquare(src: Float32Array, h: number, w: number, c: number): { data: Float32Array; side: number } {
  const side = Math.min(h, w);
  if (h === w) return { data: src, side };
  const [y0, x0] = [(h - side) >> 1, (w - side) >> 1];
  const out = new Float32Array(side * side * c);
  for (let y = 0; y < side; y++)
    out.set(src.subarray(((y + y0) * w + x0) * c, ((y + y0) * w + x0 + side) * c), y * side * c);
  return { data: out, side };
}
