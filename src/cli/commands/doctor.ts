/**
 * sdd doctor: which backend runs here, why faster ones did not, which engines can run (Python,
 * torch, CUDA), and what the machine has.
 */
import type { CommandModule } from 'yargs';
import { backendChoice, initBackend, type BackendInfo } from '../../backend/index.js';
import { machineInfo, packageVersions } from '../../util/env.js';
import { poolSize } from '../../backend/pool.js';
import { poolCounters } from '../../backend/index.js';
import { allEngines, DEFAULT_ENGINE, type EngineProbe } from '../../methods/engine.js';

export function doctorCommand(_s: (c: number) => void): CommandModule<object, { json: boolean; backend?: string }> {
  return {
    command: 'doctor',
    describe: 'print the compute backend in use, why faster ones are unavailable, and machine info',
    builder: (y) => y.option('json', { type: 'boolean', default: false }) as never,
    handler: async (a) => {
      const backend = await initBackend(backendChoice(a.backend));
      const engines = allEngines().map((e) => ({
        name: e.name,
        describe: e.describe,
        ...(e.probe ? { probe: e.probe() } : {}),
      }));
      const report = {
        backend,
        engines,
        engine_auto: autoEngine(),
        workers: poolSize(),
        packages: packageVersions(),
        machine: machineInfo(),
      };
      if (a.json) {
        process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        return;
      }
      const lines = [
        ...backendLines(backend),
        backend.gpu
          ? 'workers   one process drives the GPU (no worker pool)'
          : `workers   ${report.workers} (pool size; SDD_WORKERS overrides)`,
        ...engineLines(engines),
        `          engine: auto plans ${report.engine_auto} runs here`,
        ...machineLines(report.machine),
      ];
      process.stdout.write(lines.join('\n') + '\n');
    },
  };
}

/** The backend in use, the ones tried before it, and what it runs on (adapter, SIMD, memory, kernels). */
function backendLines(backend: BackendInfo): string[] {
  const lines = [`backend   ${backend.choice} (tfjs '${backend.tfName}', tfjs-core ${backend.tfjsVersion})`];
  for (const t of backend.attempts)
    lines.push(`  ${t.ok ? 'ok  ' : 'no  '} ${t.choice}${t.reason ? `: ${t.reason}` : ''}`);
  const ad = backend.adapter;
  if (ad) {
    lines.push(
      `adapter   ${ad.vendor} ${ad.architecture} ${ad.device}${ad.isFallbackAdapter ? ' (fallback/software: correct but slow, for tests)' : ''}`,
      `          ${ad.description}`,
      `limits    maxBufferSize ${gib(ad.limits.maxBufferSize)}, maxStorageBufferBindingSize ${gib(ad.limits.maxStorageBufferBindingSize)}, workgroup storage ${ad.limits.maxComputeWorkgroupStorageSize} B`,
    );
  }
  if (backend.simd !== null)
    lines.push(
      `simd      ${backend.simd ? 'yes' : 'no'}`,
      `threads   ${backend.threads ? 'yes' : 'no (one thread per worker)'}`,
    );
  const pool = poolCounters();
  if (pool)
    lines.push(
      `memory    buffer pool budget ${gib(pool.budget_bytes)} (SDD_WEBGPU_POOL_MB), readback staging ${gib(pool.staging_budget_bytes)} (SDD_WEBGPU_STAGING_MB); bindings over maxStorageBufferBindingSize fail naming the op`,
    );
  if (backend.replacedKernels)
    lines.push(
      'kernels   Conv2DBackpropFilter, Conv2DBackpropInput (ours); depthwise backprop, UnsortedSegmentSum, MaxPoolGrad (via cpu)',
    );
  return lines;
}

function machineLines(m: ReturnType<typeof machineInfo>): string[] {
  return [
    `node      ${m.node}`,
    `cpu       ${m.cpu} × ${m.cores}`,
    `memory    ${m.memory_gb} GiB`,
    `gpu       ${m.gpus.length ? m.gpus.join('; ') : 'none found (nvidia-smi)'}`,
  ];
}

type EngineReport = { name: string; probe?: EngineProbe };

/** What `engine: auto` picks here for a method every engine computes (SDEdit). */
function autoEngine(): string {
  return allEngines().find((e) => e.prefer?.({ gpusAsked: false }))?.name ?? DEFAULT_ENGINE;
}

/** One line per engine: what it runs on, and why it would not be picked. */
function engineLines(engines: EngineReport[]): string[] {
  return engines.map((e, i) => {
    const head = i === 0 ? 'engines   ' : '          ';
    if (!e.probe) return `${head}${e.name}: in this process (always available)`;
    const d = e.probe.detail as {
      interpreter?: string;
      torch?: string;
      devices?: Array<{ name: string; memory_bytes: number }>;
    };
    const where = d.devices?.length ? d.devices.map((x) => `${x.name} ${gib(x.memory_bytes)}`).join('; ') : 'cpu';
    const what = e.probe.usable ? `${d.interpreter ?? '?'}, torch ${d.torch ?? '?'}, ${where}` : 'not usable';
    return `${head}${e.name}: ${what}${e.probe.why ? ` (${e.probe.why})` : ''}`;
  });
}

const gib = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : `${(b / 2 ** 20).toFixed(0)} MiB`);
