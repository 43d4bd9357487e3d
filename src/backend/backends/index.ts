/**
 * Every backend, one line each (a new backend is its file here plus its line): re-exports of
 * BackendDefs only, collected by ../choices.ts, which orders them by `autoRank`.
 */
export { cpu } from './cpu.js';
export { node, nodeGpu } from './node.js';
export { wasm } from './wasm.js';
export { webgpu } from './webgpu.js';
