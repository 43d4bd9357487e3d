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
export function grid(images: Float32Array[], size: number, cols: number, zoom = 4, gap = 2): { data: Float32Array; width: number; height: number } {
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
