/**
 * Registers every method: the built-in ones (./builtin.ts) and the baselines (baselines/index.ts).
 * A new method is its file plus one line in one of those two lists.
 */
import { registerMethod } from './registry.js';
import * as builtin from './builtin.js';
import * as baselines from '../../baselines/index.js';

const ALL = [...Object.values(builtin), ...Object.values(baselines)];

let done = false;
export function registerBuiltinMethods(): void {
  if (done) return;
  done = true;
  // Each is a Method of its own params type (invariant in P): the registry keeps them as
  // Method<unknown>, and each method's zod schema checks params before they reach its run().
  for (const m of ALL) registerMethod(m as never);
}
