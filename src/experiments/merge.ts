/**
 * Deep-merge semantics for `include:` and `--set` (documented in experiments/README.md):
 * - mappings merge key by key, recursively; the including file (or the later include) wins;
 * - lists and scalars are replaced whole, never concatenated;
 * - a key set to null (`key: ~`) in the overriding file removes that key.
 */
export type Plain = { [k: string]: unknown };

export function isPlain(v: unknown): v is Plain {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlain(base) || !isPlain(over)) return over === undefined ? base : over;
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else out[k] = deepMerge(base[k], v);
  }
  return out;
}

/** Sets a dotted path, creating mappings on the way; refuses to walk through a non-mapping. */
export function setPath(target: Plain, path: string, value: unknown): void {
  const keys = path.split('.');
  if (keys.some((k) => k === '')) throw new Error(`bad key path '${path}'`);
  let cur: Plain = target;
  for (const [i, k] of keys.slice(0, -1).entries()) {
    const next = cur[k];
    if (next === undefined || next === null) cur[k] = {};
    else if (!isPlain(next)) throw new Error(`'${keys.slice(0, i + 1).join('.')}' is not a mapping`);
    cur = cur[k] as Plain;
  }
  cur[keys[keys.length - 1]] = value;
}

export function getPath(target: unknown, path: string): unknown {
  let cur = target;
  for (const k of path.split('.')) {
    if (!isPlain(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}
