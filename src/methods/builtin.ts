/** The methods that live in src/methods, one line each: re-exports of Methods only (index.ts registers them). */
export { sdd } from './sdd.js';
export { toyFit } from './toy_fit.js';
export { external } from './external.js';
