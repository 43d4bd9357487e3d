/**
 * The torch engine: a method's PyTorch twin (python/sdd_torch) in a Python process, under the
 * method contract. Light: the probe and the run are loaded on use.
 */
import type { EngineDef } from '../engine.js';
import { probeTorch, torchEnv, torchPython } from './torch_probe.js';

export const torchEngine: EngineDef = {
  name: 'torch',
  describe:
    'PyTorch twins of the methods in a Python process (python/sdd_torch; Python >= 3.9, torch >= 1.13, numpy): GPU runs at PyTorch speed',
  precisions: ['fp32', 'tf32', 'fp16'],
  wantsGpu: true,
  supports: (method) => method.torch !== undefined,
  prefer: ({ gpusAsked }) => gpusAsked || probeTorch().gpu,
  probe: probeTorch,
  worker: () => ({ command: [torchPython(), '-m', 'sdd_torch', 'worker'], env: torchEnv() }),
  run: async (method, ctx, engine) => (await import('./torch_run.js')).runTorch(method, ctx, engine),
};
