/**
 * The WebGPU backend on Dawn's Node addon (npm `webgpu`), which ships a prebuilt dawn.node and so
 * installs from npm alone. Dawn reaches the GPU through Vulkan: it needs libvulkan.so.1 and a
 * Vulkan driver (ICD). This module finds the adapter, says why there is none, and installs the
 * WebGPU globals tfjs-backend-webgpu expects before that package is imported.
 */
import { existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Dawn's fallback flag: a software rasteriser (lavapipe/SwiftShader), for tests only. */
  isFallbackAdapter: boolean;
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number; maxComputeWorkgroupStorageSize: number };
}

/** Why no adapter could be had, worded as cause → fix. */
export class NoAdapterError extends Error {}

interface GpuLike {
  requestAdapter(o?: { powerPreference?: string }): Promise<AdapterLike | null>;
}
interface AdapterLike {
  info: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
  limits: Record<string, number>;
}

const LIB_DIRS = [
  '/usr/lib/x86_64-linux-gnu',
  '/lib/x86_64-linux-gnu',
  '/usr/lib64',
  '/usr/lib',
  '/usr/local/lib',
  '/usr/lib/aarch64-linux-gnu',
];
const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

/** libvulkan.so.1 where the dynamic loader would look (LD_LIBRARY_PATH, then the usual dirs). */
function findLibVulkan(): string | null {
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(delimiter).filter(Boolean), ...LIB_DIRS];
  for (const d of dirs) if (existsSync(join(d, 'libvulkan.so.1'))) return join(d, 'libvulkan.so.1');
  return null;
}

/** The Vulkan driver manifests the loader would read: VK_DRIVER_FILES / VK_ICD_FILENAMES, else the icd.d dirs. */
function findIcds(): string[] {
  const forced = process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES;
  if (forced) return forced.split(delimiter).filter((f) => existsSync(f));
  const out: string[] = [];
  for (const d of ICD_DIRS) {
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d)) if (f.endsWith('.json')) out.push(join(d, f));
  }
  return out;
}

let gpu: GpuLike | null = null;

/**
 * Dawn toggles from SDD_WEBGPU_DAWN_TOGGLES (comma-separated), opt-in: `skip_validation` drops
 * Dawn's host-side validation of every call, `disable_robustness` the bounds checks it adds to
 * shaders. Both trade safety for host or shader time. Opt-in because nothing measured justifies a
 * default: on lavapipe (2 loaded cores, 3000 chained 2048-element adds) 0.14–0.17 ms per dispatch
 * with or without them (2026-12-04); a real GPU's host cost is still to be measured.
 */
export function dawnFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  const toggles = (env.SDD_WEBGPU_DAWN_TOGGLES ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  return toggles.length ? [`enable-dawn-features=${toggles.join(',')}`] : [];
}

/** The adapter Dawn offers (high-performance preference), or NoAdapterError with the fix. */
export async function probeAdapter(): Promise<{ gpu: GpuLike; adapter: AdapterLike; info: AdapterInfo }> {
  if (process.platform === 'linux' && !findLibVulkan()) {
    throw new NoAdapterError('libvulkan.so.1 not found → apt-get install libvulkan1');
  }
  let mod: { create(flags: string[]): GpuLike; globals: Record<string, unknown> };
  try {
    // The addon ships no types: we declare the two entry points we use.
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch (e) {
    throw new NoAdapterError(`the webgpu package (dawn.node) failed to load: ${(e as Error).message.split('\n')[0]}`);
  }
  const icds = findIcds();
  // Asked before Dawn starts: without a driver its Vulkan loader only prints warnings and finds nothing.
  if (process.platform === 'linux' && icds.length === 0) {
    throw new NoAdapterError(
      "no Vulkan driver (no ICD manifest in VK_DRIVER_FILES or /usr/share/vulkan/icd.d) → install the GPU driver's Vulkan ICD " +
        '(NVIDIA: export VK_DRIVER_FILES=…/nvidia_icd.json), or mesa-vulkan-drivers from bookworm-backports for the software one',
    );
  }
  gpu ??= mod.create(dawnFlags());
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new NoAdapterError(
      `no adapter: Vulkan found no usable device with ${icds.join(', ')} (Dawn's reasons are on stderr)`,
    );
  }
  Object.assign(globalThis, mod.globals);
  return { gpu, adapter, info: describeAdapter(adapter) };
}

function describeAdapter(a: AdapterLike): AdapterInfo {
  const i = a.info;
  return {
    vendor: i.vendor,
    architecture: i.architecture,
    device: i.device,
    description: i.description,
    isFallbackAdapter: Boolean(i.isFallbackAdapter ?? a.isFallbackAdapter),
    limits: {
      maxBufferSize: a.limits.maxBufferSize,
      maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: a.limits.maxComputeWorkgroupStorageSize,
    },
  };
}

/**
 * A GPU device node (/dev/nvidia*, /dev/dri/renderD*), or null. Auto-selection asks Dawn only
 * where one exists: on a machine without a GPU, Dawn would find just the software rasteriser and
 * print Vulkan warnings on every command.
 */
export function gpuDeviceNode(): string | null {
  if (process.platform !== 'linux') return 'non-linux';
  const nv = existsSync('/dev') ? readdirSync('/dev').find((f) => /^nvidia\d+$/.test(f)) : undefined;
  if (nv) return `/dev/${nv}`;
  const dri = existsSync('/dev/dri') ? readdirSync('/dev/dri').find((f) => f.startsWith('renderD')) : undefined;
  return dri ? `/dev/dri/${dri}` : null;
}

/** A software adapter (lavapipe, SwiftShader): correct but far too slow for real work. */
export function isSoftware(info: AdapterInfo): boolean {
  return (
    info.isFallbackAdapter ||
    info.architecture === 'software' ||
    /llvmpipe|swiftshader/i.test(info.device + info.description)
  );
}

/**
 * Starts tfjs's webgpu backend on the adapter. `navigator.gpu` must exist before the backend
 * package is imported: it registers its factory at import time and the factory asks navigator.
 */
export async function startWebGpu(g: GpuLike): Promise<void> {
  (globalThis as { navigator?: unknown }).navigator = { gpu: g };
  await import('@tensorflow/tfjs-backend-webgpu');
}

/**
 * Dawn's addon keeps the event loop alive while the GPU object lives; dropping it (and
 * destroying the device) lets a finished command exit on its own.
 */
export function releaseGpu(device: { destroy(): void } | undefined): void {
  releasing = true;
  device?.destroy();
  gpu = null;
  (globalThis as { navigator?: unknown }).navigator = undefined;
}

interface DeviceLike {
  lost: Promise<{ reason: string; message: string }>;
  addEventListener(
    type: 'uncapturederror',
    f: (ev: { error: { message: string; constructor: { name: string } } }) => void,
  ): void;
  destroy(): void;
}

let releasing = false;

/**
 * Calls `onFault` once with a clear reason when the device is lost (driver reset, Xid, another
 * process's crash) or reports an error nobody caught: out of memory above all. tfjs does not
 * surface either; without this a run would hang or compute on garbage.
 */
export function watchDevice(device: DeviceLike, onFault: (reason: string) => void): void {
  let fired = false;
  const fire = (r: string) => {
    if (!fired && !releasing) onFault(r);
    fired = true;
  };
  void device.lost.then((info) =>
    fire(`GPU device lost (${info.reason || 'unknown'}): ${info.message || 'no message'}`),
  );
  device.addEventListener('uncapturederror', (ev) => {
    const name = ev.error.constructor.name;
    fire(
      name === 'GPUOutOfMemoryError'
        ? `GPU out of memory: ${ev.error.message}`
        : `GPU error (${name}): ${ev.error.message}`,
    );
  });
}
