/**
 * Deterministic renderer for toyfaces: a face is a stack of analytic shapes (ellipses, arcs,
 * rings) in face-local coordinates, drawn top layer first, with s×s supersampling per pixel so
 * that 2–3-pixel features (eyes, glasses, mouth shape) stay visible at 32×32.
 */
import type { Face } from './attributes.js';

/** Bump whenever a change alters pixels: caches and model cards record it. */
export const RENDER_VERSION = 1;

type RGB = readonly [number, number, number];
interface Layer {
  inside(x: number, y: number): boolean;
  color: RGB;
}

const HAIR: Record<string, RGB> = {
  black: [0.08, 0.07, 0.07],
  brown: [0.42, 0.25, 0.12],
  blonde: [0.95, 0.82, 0.45],
  red: [0.8, 0.24, 0.08],
  white: [0.95, 0.95, 0.93],
};
const SKIN: Record<string, RGB> = {
  porcelain: [0.98, 0.87, 0.8],
  light: [0.93, 0.75, 0.62],
  tan: [0.8, 0.6, 0.42],
  brown: [0.6, 0.4, 0.26],
  dark: [0.36, 0.23, 0.15],
};
const EYE: Record<string, RGB> = {
  brown: [0.4, 0.22, 0.08],
  blue: [0.15, 0.42, 0.9],
  green: [0.2, 0.62, 0.28],
  grey: [0.58, 0.6, 0.62],
};
const BACKGROUND: Record<string, RGB> = {
  sky: [0.62, 0.8, 0.95],
  mint: [0.7, 0.92, 0.8],
  sand: [0.9, 0.85, 0.66],
  lilac: [0.8, 0.72, 0.92],
  slate: [0.42, 0.47, 0.56],
  peach: [0.98, 0.76, 0.66],
};
const FACE_WIDTH = { narrow: 0.33, oval: 0.39, wide: 0.46 } as const;
const DARK: RGB = [0.12, 0.1, 0.1];
const LIPS: RGB = [0.78, 0.12, 0.18];
const WHITE: RGB = [0.97, 0.97, 0.97];
const FRAME: RGB = [0.05, 0.05, 0.3];

const ellipse = (cx: number, cy: number, rx: number, ry: number) => (x: number, y: number) =>
  ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1;
const rect = (x0: number, y0: number, x1: number, y1: number) => (x: number, y: number) =>
  x >= x0 && x <= x1 && y >= y0 && y <= y1;
const ring = (cx: number, cy: number, r0: number, r1: number) => (x: number, y: number) => {
  const d = Math.hypot(x - cx, y - cy);
  return d >= r0 && d <= r1;
};
/** A thick curve y = c(x) over |x − cx| ≤ hw, from c to c + thickness(x). */
const band =
  (cx: number, hw: number, c: (u: number) => number, thick: (u: number) => number) => (x: number, y: number) => {
    const u = (x - cx) / hw;
    if (u < -1 || u > 1) return false;
    const top = c(u);
    return y >= top && y <= top + thick(u);
  };
/** A line segment with a half-width. */
const segment = (x0: number, y0: number, x1: number, y1: number, hw: number) => (x: number, y: number) => {
  const dx = x1 - x0;
  const dy = y1 - y0;
  const t = Math.max(0, Math.min(1, ((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(x - x0 - t * dx, y - y0 - t * dy) <= hw;
};
const and = (a: (x: number, y: number) => boolean, b: (x: number, y: number) => boolean) => (x: number, y: number) =>
  a(x, y) && b(x, y);

function hsv(h: number, s: number, v: number): RGB {
  const f = (n: number) => {
    const k = (n + h * 6) % 6;
    return v - v * s * Math.max(0, Math.min(k, 4 - k, 1));
  };
  return [f(5), f(3), f(1)];
}

function shade(c: RGB, k: number): RGB {
  return [c[0] * k, c[1] * k, c[2] * k];
}

/** A face's pose and colours, which every part's placement reads, and where parts are pushed. */
interface Frame {
  a: Face['attrs'];
  side: boolean;
  /** The facing side in side view (±1). */
  f: number;
  /** Face half-width. */
  W: number;
  /** Face centre. */
  fx: number;
  /** How far features shift toward the facing side. */
  ox: number;
  skin: RGB;
  hair: RGB;
  /** The visible eyes' centres. */
  eyes: number[];
  /** Hair centre. */
  hc: number;
  push(inside: Layer['inside'], color: RGB): void;
}

/** Layers from the top down: the first one containing a point colours it. */
function layers(face: Face): { top: Layer[]; background: RGB } {
  const a = face.attrs;
  const side = a.pose === 'side';
  const f = face.jitter.facing;
  const W = FACE_WIDTH[a.face_shape] * (side ? 0.82 : 1);
  const fx = side ? f * 0.04 : 0;
  const ox = side ? f * 0.17 : 0;
  const out: Layer[] = [];
  const frame: Frame = {
    a,
    side,
    f,
    W,
    fx,
    ox,
    skin: SKIN[a.skin_tone],
    hair: HAIR[a.hair_color],
    eyes: side ? [fx + ox + f * 0.04] : [-0.15, 0.15],
    hc: fx - (side ? f * 0.06 : 0),
    push: (inside, color) => out.push({ inside, color }),
  };
  // Top layer first: glasses over eyes over brows, then mouth, nose, hair, head, back hair, shirt.
  eyesAndGlasses(frame);
  mouth(frame);
  nose(frame);
  frontHair(frame);
  headAndBody(frame, face.jitter.shirt);
  return { top: out, background: BACKGROUND[a.background] };
}

function eyesAndGlasses({ a, side, f, fx, hair, eyes, push }: Frame): void {
  // Glasses (top): rings round the visible eyes, a bridge, and a temple arm in side view.
  if (a.glasses === 'glasses') {
    // Thick (≈1 px at 32²) so the frame shows on dark skin too.
    for (const ex of eyes) push(ring(ex, -0.02, 0.1, 0.16), FRAME);
    if (side) push(segment(eyes[0] - f * 0.13, -0.03, fx - f * 0.12, 0.02, 0.025), FRAME);
    else push(rect(-0.06, -0.045, 0.06, -0.005), FRAME);
  }
  // Eyes: pupil, iris, sclera.
  for (const ex of eyes) {
    // Larger than life: the iris must still carry its colour at 32×32.
    push(ellipse(ex, -0.02, 0.022, 0.025), DARK);
    push(ellipse(ex, -0.02, 0.06, 0.058), EYE[a.eye_color]);
    push(ellipse(ex, -0.02, 0.095, 0.062), WHITE);
  }
  // Eyebrows: flat (neutral), raised (happy), slanted down to the nose (angry).
  for (const ex of eyes) {
    const inner = side ? -f : -Math.sign(ex) || -1; // direction toward the nose
    const lift = a.expression === 'happy' ? -0.05 : 0;
    const slant = a.expression === 'angry' ? 0.09 : 0;
    // Darker than the hair, so brows under a fringe still show.
    push(
      segment(ex - inner * 0.08, -0.16 + lift - slant / 2, ex + inner * 0.07, -0.16 + lift + slant, 0.025),
      shade(hair, 0.45),
    );
  }
}

function mouth({ a, side, fx, ox, push }: Frame): void {
  // Mouth.
  const mx = fx + ox * 0.45;
  const mw = side ? 0.15 : 0.19;
  if (a.expression === 'happy') {
    push(
      band(
        mx,
        mw,
        (u) => 0.26 - 0.1 * u * u,
        (u) => 0.11 * (1 - u * u) + 0.015,
      ),
      LIPS,
    );
    push(
      band(
        mx,
        mw * 0.8,
        (u) => 0.26 - 0.1 * 0.64 * u * u + 0.008,
        () => 0.035,
      ),
      WHITE,
    );
  } else if (a.expression === 'angry') {
    // An open, down-turned mouth with clenched teeth: as large as the smile, differing in shape,
    // and the white teeth keep it visible on every skin tone.
    push(
      band(
        mx,
        mw * 0.75,
        (u) => 0.265 + 0.1 * 0.56 * u * u,
        () => 0.03,
      ),
      WHITE,
    );
    push(
      band(
        mx,
        mw,
        (u) => 0.24 + 0.1 * u * u,
        (u) => 0.08 * (1 - u * u) + 0.015,
      ),
      LIPS,
    );
  } else {
    push(
      band(
        mx,
        mw,
        () => 0.28,
        () => 0.028,
      ),
      LIPS,
    );
  }
}

function nose({ side, f, W, fx, skin, push }: Frame): void {
  // Nose: a darker patch, or a profile bump past the outline in side view.
  if (side) {
    const tip = fx + f * (W + 0.09);
    push(
      (x, y) =>
        y >= 0.0 &&
        y <= 0.2 &&
        f * (x - (fx + f * (W - 0.05))) >= 0 &&
        f * (tip - x) >= (Math.abs(y - 0.14) / 0.14) * (W * 0.0 + 0.14) * 0.9,
      skin,
    );
  } else push(ellipse(0, 0.12, 0.04, 0.06), shade(skin, 0.85));
}

function frontHair({ a, side, f, W, hair, hc, push }: Frame): void {
  // Front hair: a cap above the hairline (curly: bumpy edge and more volume).
  if (a.hair_style !== 'bald') {
    const curly = a.hair_style === 'curly';
    const rx = W + (curly ? 0.14 : 0.07);
    const ry = curly ? 0.7 : 0.62;
    const cap = (x: number, y: number) => {
      const t = Math.atan2(y + 0.05, x - hc);
      const r = curly ? 1 + 0.09 * Math.sin(9 * t) : 1;
      const inEll = ((x - hc) / (rx * r)) ** 2 + ((y + 0.05) / (ry * r)) ** 2 <= 1;
      // In side view the hair falls down the back of the head only, leaving the profile clear.
      const down = side && f * (x - hc) > 0 ? 0 : 0.22 * ((x - hc) / W) ** 2;
      const hairline = (curly ? -0.12 : -0.2) + down;
      return inEll && y <= hairline;
    };
    push(cap, hair);
  }
}

/** Ears, face, neck, the long and curly hair behind the face, and the shirt (bottom layer). */
function headAndBody({ a, side, f, W, fx, skin, hair, hc, push }: Frame, shirt: number): void {
  // Ears, face, neck, shirt.
  if (side) push(ellipse(fx - f * 0.04, 0.06, 0.06, 0.1), shade(skin, 0.9));
  else for (const s of [-1, 1]) push(ellipse(s * W, 0.07, 0.065, 0.11), shade(skin, 0.92));
  push(ellipse(fx, 0.05, W, 0.52), skin);
  push(rect(fx - 0.14, 0.35, fx + 0.14, 0.85), shade(skin, 0.88));
  // Long and curly hair also fall behind the face.
  if (a.hair_style === 'long') push(and(ellipse(hc, 0.1, W + 0.12, 0.8), rect(-2, -2, 2, 0.8)), shade(hair, 0.92));
  if (a.hair_style === 'curly')
    push(
      (x, y) =>
        ((x - hc) / (W + 0.16)) ** 2 + ((y - 0.0) / 0.6) ** 2 <= 1 + 0.08 * Math.sin(11 * Math.atan2(y, x - hc)),
      shade(hair, 0.92),
    );
  push(ellipse(fx, 1.2, 0.85, 0.5), hsv(shirt, 0.55, 0.65));
}

/** Renders an HWC float image in [0, 1]. */
export function render(face: Face, size = 32, samples = 4): Float32Array {
  const { top, background } = layers(face);
  const { dx, dy, scale } = face.jitter;
  const img = new Float32Array(size * size * 3);
  const inv = 1 / (samples * samples);
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let sy = 0; sy < samples; sy++) {
        for (let sx = 0; sx < samples; sx++) {
          // Image coordinates in [-1, 1], then into the face's own frame.
          const x = (((px + (sx + 0.5) / samples) / size) * 2 - 1 - dx) / scale;
          const y = (((py + (sy + 0.5) / samples) / size) * 2 - 1 - dy) / scale;
          let c = background;
          for (const l of top) {
            if (l.inside(x, y)) {
              c = l.color;
              break;
            }
          }
          r += c[0];
          g += c[1];
          b += c[2];
        }
      }
      const o = (py * size + px) * 3;
      img[o] = r * inv;
      img[o + 1] = g * inv;
      img[o + 2] = b * inv;
    }
  }
  return img;
}
