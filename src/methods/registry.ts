/** String-keyed method registry: experiment files name methods; a duplicate name is a bug. */
import type { Method } from './types.js';
import { UserError } from '../errors.js';
import { didYouMean } from '../util/suggest.js';

const methods = new Map<string, Method<unknown>>();

export function registerMethod<P>(m: Method<P>): void {
  if (methods.has(m.name)) throw new Error(`method '${m.name}' is already registered`);
  methods.set(m.name, m as Method<unknown>);
}

export function getMethod(name: string, where = 'method.name'): Method<unknown> {
  const m = methods.get(name);
  if (!m) throw new UserError(`${where}: unknown method '${name}'${didYouMean(name, [...methods.keys()])}`);
  return m;
}

function methodNames(): string[] {
  return [...methods.keys()].sort();
}

export function allMethods(): Method<unknown>[] {
  return methodNames().map((n) => methods.get(n)!);
}
