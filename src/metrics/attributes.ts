/**
 * Attribute edit accuracy (beyond the paper: toyfaces has ground truth). Per item:
 *   hit          the attribute classifier reads the target value on the edited image;
 *   preserved    fraction of the other attributes whose prediction did not change from the
 *                source image (predictions vs predictions, so classifier errors that are the
 *                same on both images do not count as damage);
 *   both         hit and every other attribute preserved;
 *   identity     cosine of identity embeddings of edited and source images.
 */
export interface AttributePredictions {
  /** names[i] is the attribute of column i; values are class indices, row-major [n, names.length]. */
  names: string[];
  classes: Int32Array;
}

export interface EditAccuracy {
  hit_rate: number;
  preservation_rate: number;
  hit_and_preserved: number;
  per_item: Array<{ hit: boolean; preserved: number; all_preserved: boolean }>;
  n: number;
}

export function editAccuracy(
  source: AttributePredictions,
  edited: AttributePredictions,
  attribute: string,
  targetClass: number,
): EditAccuracy {
  const a = source.names.length;
  const col = source.names.indexOf(attribute);
  if (col < 0) throw new RangeError(`no classifier head for attribute '${attribute}'`);
  const n = source.classes.length / a;
  if (edited.classes.length !== source.classes.length)
    throw new RangeError('source and edited predictions differ in size');
  const per_item = Array.from({ length: n }, (_, i) => {
    let same = 0;
    for (let k = 0; k < a; k++) if (k !== col && edited.classes[i * a + k] === source.classes[i * a + k]) same++;
    return {
      hit: edited.classes[i * a + col] === targetClass,
      preserved: same / (a - 1),
      all_preserved: same === a - 1,
    };
  });
  const mean = (f: (x: (typeof per_item)[number]) => number) => per_item.reduce((s, x) => s + f(x), 0) / n;
  return {
    hit_rate: mean((x) => (x.hit ? 1 : 0)),
    preservation_rate: mean((x) => x.preserved),
    hit_and_preserved: mean((x) => (x.hit && x.all_preserved ? 1 : 0)),
    per_item,
    n,
  };
}

/** Mean cosine similarity of paired unit embeddings (rows of d). */
export function identitySimilarity(
  a: Float32Array,
  b: Float32Array,
  d: number,
): { identity: number; per_item: number[] } {
  const n = a.length / d;
  const per = Array.from({ length: n }, (_, i) => {
    let s = 0;
    let na = 0;
    let nb = 0;
    for (let k = 0; k < d; k++) {
      s += a[i * d + k] * b[i * d + k];
      na += a[i * d + k] ** 2;
      nb += b[i * d + k] ** 2;
    }
    return s / Math.sqrt(na * nb);
  });
  return { identity: per.reduce((x, y) => x + y, 0) / n, per_item: per };
}
