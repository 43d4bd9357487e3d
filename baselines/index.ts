/**
 * The baseline methods, one line each (a new baseline is its file here plus its line): re-exports
 * of Methods only, registered by src/methods/index.ts with the built-in ones.
 */
export { ddib } from './ddib.js';
export { diffae } from './diffae.js';
export { sdedit } from './sdedit.js';
export { styleclip } from './styleclip.js';
