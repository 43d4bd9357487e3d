/** tfjs-node (libtensorflow, CPU) and tfjs-node-gpu (CUDA): optional packages, often absent. */
import { started, tryImport, type BackendDef } from './types.js';

function tfjsNode<N extends string>(name: N, autoRank: number, pkg: string, gpu: boolean): BackendDef<N> {
  return {
    name,
    autoRank,
    tfName: 'tensorflow',
    gpu,
    hostOptimizer: false,
    exact: false,
    replacedKernels: false,
    bundleExternal: [pkg],
    async activate({ tf }) {
      const err = await tryImport(pkg);
      if (err) return { ok: false, reason: err };
      return started(await tf.setBackend('tensorflow'), 'tfjs-node loaded but its backend failed to start');
    },
  };
}

export const nodeGpu = tfjsNode('node-gpu', 10, '@tensorflow/tfjs-node-gpu', true);
export const node = tfjsNode('node', 30, '@tensorflow/tfjs-node', false);
