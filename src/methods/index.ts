/** Registers every built-in method. New methods (SDD, baselines/*) add one line here. */
import { registerMethod } from './registry.js';
import { toyFit } from './toy_fit.js';
import { sdd } from './sdd.js';
import { BASELINES } from '../../baselines/index.js';

let done = false;
export function registerBuiltinMethods(): void {
  if (done) return;
  done = true;
  registerMethod(toyFit);
  registerMethod(sdd);
  for (const b of BASELINES) registerMethod(b as never); // each is a Method of its own params type
}
