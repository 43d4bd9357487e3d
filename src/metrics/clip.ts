/**
 * CLIP-space metrics on embeddings (the image–text model is pluggable; these take its outputs).
 * - CLIP score (torchmetrics): 100·cos(E_I, E_T) per item, mean, clamped at 0.
 * - Directional CLIP similarity (StyleGAN-NADA / the SDD paper):
 *   ΔT = normalise(mean over templates of (ê_T(target) − ê_T(source))), ΔI = normalise(ê_I(edit) − ê_I(src)),
 *   similarity = cos(ΔI, ΔT) per item, then averaged. An item whose image did not change has no
 *   direction: it is counted (`zero_edits`) and scored 0 rather than perturbed (NADA) or
 *   epsilon-divided (DiffusionCLIP), so a method that edits nothing cannot look good.
 */
export type Vec = ArrayLike<number>;

function normalize(v: Vec): Float64Array {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i] * v[i];
  n = Math.sqrt(n);
  const out = new Float64Array(v.length);
  if (n === 0) return out;
  for (let i = 0; i < v.length; i++) out[i] = v[i] / n;
  return out;
}

export function cosine(a: Vec, b: Vec): number {
  const x = normalize(a);
  const y = normalize(b);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * y[i];
  return s;
}

export function clipScore(images: Vec[], texts: Vec[]): { clip_score: number; n: number } {
  if (images.length !== texts.length || images.length === 0)
    throw new RangeError('clip score needs as many texts as images (≥ 1)');
  const mean = images.reduce((s, im, i) => s + 100 * cosine(im, texts[i]), 0) / images.length;
  return { clip_score: Math.max(mean, 0), n: images.length };
}

/** Text direction: normalised mean over templates of normalised target − normalised source. */
export function textDirection(targets: Vec[], sources: Vec[]): Float64Array {
  if (targets.length !== sources.length || targets.length === 0)
    throw new RangeError('one source per target template (≥ 1)');
  const d = targets[0].length;
  const acc = new Float64Array(d);
  targets.forEach((t, k) => {
    const a = normalize(t);
    const b = normalize(sources[k]);
    for (let i = 0; i < d; i++) acc[i] += (a[i] - b[i]) / targets.length;
  });
  return normalize(acc);
}

export interface DirectionalResult {
  clip_directional: number;
  per_item: number[];
  zero_edits: number;
  n: number;
}

/** `zeroTol`: an edit whose normalised image embedding moved less than this counts as no edit. */
export function directionalSimilarity(
  edited: Vec[],
  sources: Vec[],
  direction: Vec,
  zeroTol = 1e-6,
): DirectionalResult {
  if (edited.length !== sources.length || edited.length === 0)
    throw new RangeError('one source image per edited image (≥ 1)');
  let zero = 0;
  const per = edited.map((e, k) => {
    const a = normalize(e);
    const b = normalize(sources[k]);
    const delta = new Float64Array(a.length);
    let norm = 0;
    for (let i = 0; i < a.length; i++) {
      delta[i] = a[i] - b[i];
      norm += delta[i] ** 2;
    }
    if (Math.sqrt(norm) < zeroTol) {
      zero++;
      return 0;
    }
    return cosine(delta, direction);
  });
  return {
    clip_directional: per.reduce((s, v) => s + v, 0) / per.length,
    per_item: per,
    zero_edits: zero,
    n: per.length,
  };
}
