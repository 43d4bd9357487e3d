/**
 * One compute backend: what the harness needs to know about it without starting it (these facts
 * are read by planning, the Slurm executor, the optimiser and `make bundle`, none of which may
 * load tfjs), and how to start it. A new backend is one file in this folder plus its line in
 * ./index.ts. Modules here import tfjs only as types at load time; `activate` imports what it
 * needs, so that reading the facts stays cheap.
 */
import type * as Tf from '@tensorflow/tfjs-core';
import type { AdapterInfo } from '../webgpu.js';

export interface ActivateContext {
  /** Part of auto-selection (true), or asked for by name (software adapters allowed, for tests). */
  auto: boolean;
  tf: typeof Tf;
  /** Reports a device failure under a run (lost, out of memory): the run fails and resumes later. */
  onDeviceFault(reason: string): void;
}

/** Started, with the adapter where there is one; or the reason it could not start. */
export type Activation = { ok: true; adapter?: AdapterInfo } | { ok: false; reason: string };

export interface BackendDef<N extends string = string> {
  /** As named on the command line and in experiment files (`backend:`). */
  readonly name: N;
  /** Its place in auto-selection: the lowest rank that starts wins (GPUs first, cpu last). */
  readonly autoRank: number;
  /** tfjs's name for it once active ('tensorflow', 'webgpu', 'wasm', 'cpu'). */
  readonly tfName: string;
  /** One process drives a GPU: no worker pool, no data parallelism, a GPU per Slurm task. */
  readonly gpu: boolean;
  /** Adam's update runs on the host (JS loops beat a dozen tiny kernels on CPU backends). */
  readonly hostOptimizer: boolean;
  /** Recomputing on the same weights reproduces numbers bit for bit (zoo eval's tolerance 0). */
  readonly exact: boolean;
  /** Our replacement kernels are registered on it (kernels/register.ts). */
  readonly replacedKernels: boolean;
  /** Packages `make bundle` leaves external, loaded from DIR/node_modules when present. */
  readonly bundleExternal: readonly string[];
  activate(ctx: ActivateContext): Promise<Activation>;
}

/** Guarded dynamic import: the tfjs-node packages are optional and fail to install without network. */
export async function tryImport(pkg: string): Promise<string | null> {
  try {
    await import(pkg);
    return null;
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    return (e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' ? `${pkg} is not installed` : msg;
  }
}

export const started = (ok: boolean, reason: string): Activation => (ok ? { ok: true } : { ok: false, reason });
