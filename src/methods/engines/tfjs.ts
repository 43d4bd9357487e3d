/** The embedded engine: the method's own TypeScript on tfjs, in the run's process (every method). */
import type { EngineDef } from '../engine.js';

export const tfjsEngine: EngineDef = {
  name: 'tfjs',
  describe: 'TypeScript on tfjs in the run process (wasm, cpu or webgpu backend): needs nothing but npm',
  precisions: ['fp32'],
  supports: () => true,
  run: (method, ctx) => method.run(ctx),
};
