/**
 * `--set KEY=VALUE` overrides, applied after includes and the profile. Two rules keep them from
 * silently doing nothing:
 * - `--set sweep.KEY=[v1, v2]` replaces the sweep's list for KEY (itself a dotted key, such as
 *   `method.params.lr`), since the sweep's keys are single entries, not nested mappings;
 *   `--set sweep.KEY=~` removes KEY from the sweep;
 * - a `--set` on a key the sweep also sets (the same key, one inside it, or one containing it) is an
 *   error naming both: the sweep is applied after the overrides, so the --set would never take effect.
 */
import { UserError } from '../errors.js';
import { parseYamlSafe } from './yaml.js';
import { isPlain, setPath, type Plain } from './merge.js';

const SWEEP = 'sweep.';

interface Override {
  key: string;
  value: unknown;
  text: string;
}

function parseSet(set: string, origin: string): Override {
  const eq = set.indexOf('=');
  if (eq <= 0) throw new UserError(`${origin}: expected KEY=VALUE, got '${set}'`);
  const key = set.slice(0, eq).trim();
  return { key, value: parseYamlSafe(set.slice(eq + 1), `${origin} ${key}`), text: set };
}

/** Checks every override's KEY=VALUE form (and YAML value) before any file is read. */
export function checkSets(sets: string[], origin = '--set'): void {
  for (const s of sets) parseSet(s, origin);
}

/** `a.b.c=value`: value is read as YAML, so numbers, booleans and `[1, 2]` lists work. */
export function applySet(config: Plain, set: string, origin = '--set'): void {
  const { key, value } = parseSet(set, origin);
  try {
    if (key.startsWith(SWEEP) && key.length > SWEEP.length) {
      if (config.sweep !== undefined && !isPlain(config.sweep)) throw new Error("'sweep' is not a mapping");
      const sweep: Plain = { ...(config.sweep as Plain | undefined), [key.slice(SWEEP.length)]: value };
      if (value === null) delete sweep[key.slice(SWEEP.length)]; // `~` removes, as in an include
      config.sweep = sweep;
    } else setPath(config, key, value);
  } catch (e) {
    throw new UserError(`${origin}: ${key}: ${(e as Error).message}`);
  }
}

const overlaps = (a: string, b: string) => a === b || a.startsWith(`${b}.`) || b.startsWith(`${a}.`);

/** The UserError for the first override of a swept key, or nothing. */
export function refuseSweptSets(config: Plain, sets: string[], file: string, origin = '--set'): void {
  const sweep = isPlain(config.sweep) ? config.sweep : {};
  for (const set of sets) {
    const { key, text } = parseSet(set, origin);
    if (key === 'sweep' || key.startsWith(SWEEP)) continue;
    const swept = Object.keys(sweep).find((k) => overlaps(k, key));
    if (swept === undefined) continue;
    const list = JSON.stringify(sweep[swept]);
    const only = key === swept ? `${origin} 'sweep.${swept}=[${text.slice(text.indexOf('=') + 1).trim()}]'` : '';
    const instead = only ? `; to run only that value, replace the sweep's list: ${only}` : '';
    const effect = key === swept ? 'would not take effect' : `would be overridden at ${swept}`;
    throw new UserError(
      `${file}: sweep.${swept}: the sweep sets this key (${list}) after the overrides, so ` +
        `${origin} ${text} ${effect}${instead}`,
    );
  }
}
