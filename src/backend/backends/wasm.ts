/** tfjs's WebAssembly backend (XNNPACK, SIMD, threads): the default where no GPU is. */
import { started, type BackendDef } from './types.js';

export const wasm: BackendDef<'wasm'> = {
  name: 'wasm',
  autoRank: 40,
  tfName: 'wasm',
  gpu: false,
  hostOptimizer: true,
  exact: true,
  replacedKernels: true,
  bundleExternal: [],
  async activate({ tf }) {
    await import('@tensorflow/tfjs-backend-wasm');
    // cpu stays registered beside wasm: the delegated kernels and the kernel tests need it.
    await import('@tensorflow/tfjs-backend-cpu');
    const { registerReplacementKernels } = await import('../kernels/register.js');
    registerReplacementKernels('wasm');
    // The cpu kernels beside wasm are the kernel tests' reference: with tfjs's fixed too.
    const { registerCpuKernelFixes } = await import('../kernels/cpu_fixes.js');
    registerCpuKernelFixes();
    return started(await tf.setBackend('wasm'), 'the wasm backend failed to initialise');
  },
};
