/**
 * WebGPU on Dawn (npm's `webgpu` addon over Vulkan). Auto-selection takes a hardware adapter only;
 * asked for by name it takes a software one too (lavapipe, in CI).
 */
import { gpuDeviceNode, isSoftware, NoAdapterError, probeAdapter, startWebGpu, watchDevice } from '../webgpu.js';
import type { BackendDef } from './types.js';

export const webgpu: BackendDef<'webgpu'> = {
  name: 'webgpu',
  autoRank: 20,
  tfName: 'webgpu',
  gpu: true,
  hostOptimizer: false,
  exact: false,
  replacedKernels: false,
  bundleExternal: ['webgpu'],
  async activate({ auto, tf, onDeviceFault }) {
    if (auto && !gpuDeviceNode()) {
      return {
        ok: false,
        reason: 'no GPU device (/dev/nvidia*, /dev/dri/renderD*); --backend webgpu tries a software adapter anyway',
      };
    }
    try {
      const probe = await probeAdapter();
      if (auto && isSoftware(probe.info)) {
        const what = probe.info.description || probe.info.device;
        return { ok: false, reason: `only a software adapter (${what}); --backend webgpu uses it anyway, for tests` };
      }
      await startWebGpu(probe.gpu);
      if (!(await tf.setBackend('webgpu')))
        return { ok: false, reason: 'the webgpu backend failed to initialise on the adapter' };
      const { registerWebGpuKernels } = await import('../kernels/webgpu_fixes.js');
      const { registerFusedAttention } = await import('../kernels/attention.js');
      await registerWebGpuKernels();
      registerFusedAttention('webgpu');
      // Tiled conv backprops in place of tfjs's naive ones, registered before the pool installs the
      // batch split over them (SDD_WEBGPU_CONV_BACKPROP=tfjs keeps tfjs's).
      const { registerConvBackprop } = await import('../kernels/webgpu_conv_backprop.js');
      registerConvBackprop('webgpu');
      // The fused GroupNorm+SiLU and SiLU kernels that src/nn/layers.ts takes on webgpu.
      const { registerGroupNormSilu } = await import('../kernels/group_norm_silu.js');
      const { registerSilu } = await import('../kernels/silu.js');
      registerGroupNormSilu('webgpu');
      registerSilu('webgpu');
      const { registerFusedAdam } = await import('../kernels/adam.js');
      await registerFusedAdam('webgpu');
      // Bounds tfjs's buffer pool (it never destroys a free buffer: issue #32's out-of-memory).
      const { installDevicePool } = await import('../webgpu_pool.js');
      const problems = installDevicePool(tf.backend());
      if (problems.length)
        console.error(
          `sdd: webgpu buffer pool left unbounded, tfjs-backend-webgpu internals changed: ${problems.join('; ')}`,
        );
      // The backend's device is not in tfjs's public types; watchDevice takes what it needs of it.
      const device = (tf.backend() as unknown as { device: Parameters<typeof watchDevice>[0] }).device;
      watchDevice(device, onDeviceFault);
      return { ok: true, adapter: probe.info };
    } catch (e) {
      if (e instanceof NoAdapterError) return { ok: false, reason: e.message };
      throw e;
    }
  },
};
