/** tfjs's plain JavaScript backend: slow, exact, always there (the kernels' reference). */
import { started, type BackendDef } from './types.js';

export const cpu: BackendDef<'cpu'> = {
  name: 'cpu',
  autoRank: 50,
  tfName: 'cpu',
  gpu: false,
  hostOptimizer: true,
  exact: true,
  replacedKernels: false,
  bundleExternal: [],
  async activate({ tf }) {
    await import('@tensorflow/tfjs-backend-cpu');
    // tfjs-backend-cpu 4.22's ResizeNearestNeighborGrad is wrong for batch > 1 and its ResizeBilinearGrad
    // ignores halfPixelCenters (kernels/cpu_fixes.ts).
    const { registerCpuKernelFixes } = await import('../kernels/cpu_fixes.js');
    registerCpuKernelFixes();
    return started(await tf.setBackend('cpu'), 'the cpu backend failed to initialise');
  },
};
