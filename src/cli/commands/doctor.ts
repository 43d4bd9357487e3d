/** sdd doctor: which backend runs here, why faster ones did not, and what the machine has. */
import type { CommandModule } from 'yargs';
import { backendChoice, initBackend } from '../../backend/index.js';
import { machineInfo, packageVersions } from '../../util/env.js';
import { poolSize } from '../../backend/pool.js';

export function doctorCommand(_s: (c: number) => void): CommandModule<object, { json: boolean; backend?: string }> {
  return {
    command: 'doctor',
    describe: 'print the compute backend in use, why faster ones are unavailable, and machine info',
    builder: (y) => y.option('json', { type: 'boolean', default: false }) as never,
    handler: async (a) => {
      const backend = await initBackend(backendChoice(a.backend));
      const report = { backend, workers: poolSize(), packages: packageVersions(), machine: machineInfo() };
      if (a.json) {
        process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        return;
      }
      const lines = [`backend   ${backend.choice} (tfjs '${backend.tfName}', tfjs-core ${backend.tfjsVersion})`];
      for (const t of backend.attempts) lines.push(`  ${t.ok ? 'ok  ' : 'no  '} ${t.choice}${t.reason ? `: ${t.reason}` : ''}`);
      const ad = backend.adapter;
      if (ad) {
        lines.push(
          `adapter   ${ad.vendor} ${ad.architecture} ${ad.device}${ad.isFallbackAdapter ? ' (fallback/software: correct but slow, for tests)' : ''}`,
          `          ${ad.description}`,
          `limits    maxBufferSize ${gib(ad.limits.maxBufferSize)}, maxStorageBufferBindingSize ${gib(ad.limits.maxStorageBufferBindingSize)}, workgroup storage ${ad.limits.maxComputeWorkgroupStorageSize} B`,
        );
      }
      if (backend.simd !== null) lines.push(`simd      ${backend.simd ? 'yes' : 'no'}`, `threads   ${backend.threads ? 'yes' : 'no (one thread per worker)'}`);
      if (backend.replacedKernels) lines.push('kernels   Conv2DBackpropFilter, Conv2DBackpropInput (ours); depthwise backprop, UnsortedSegmentSum, MaxPoolGrad (via cpu)');
      lines.push(backend.gpu ? 'workers   one process drives the GPU (no worker pool)' : `workers   ${report.workers} (pool size; SDD_WORKERS overrides)`);
      const m = report.machine;
      lines.push(`node      ${m.node}`, `cpu       ${m.cpu} × ${m.cores}`, `memory    ${m.memory_gb} GiB`, `gpu       ${m.gpus.length ? m.gpus.join('; ') : 'none found (nvidia-smi)'}`);
      process.stdout.write(lines.join('\n') + '\n');
    },
  };
}

const gib = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : `${(b / 2 ** 20).toFixed(0)} MiB`);
