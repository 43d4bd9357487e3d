/**
 * Every engine: one line each (src/methods/engine.ts collects them; `auto` takes one that prefers
 * itself, else tfjs).
 */
export { torchEngine } from './torch.js';
export { tfjsEngine } from './tfjs.js';
