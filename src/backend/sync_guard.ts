/**
 * A test mode in which synchronous tensor reads throw. On the WebGPU backend dataSync/arraySync/
 * bufferSync cannot work in Node (and would stall the GPU where they could), so every algorithm,
 * evaluation and training path reads with an awaited data(). SDD_FORBID_SYNC_READS=1 makes a
 * CPU process behave as the GPU would, so a sync read fails in CI before it fails on a GPU. The
 * CLI processes the end-to-end tests spawn run in this mode.
 */
import * as tf from '@tensorflow/tfjs-core';

export class SyncReadError extends Error {
  override name = 'SyncReadError';
}

const METHODS = ['dataSync', 'arraySync', 'bufferSync'] as const;
let installed = false;

/** The first stack frame outside tfjs: who asked for the read. */
function caller(): string {
  const frames = (new Error().stack ?? '').split('\n').slice(1);
  const own = frames.find(
    (f) => !f.includes('sync_guard.ts') && !f.includes('node_modules/@tensorflow') && !f.includes('(node:'),
  );
  return own?.trim().replace(/^at /, '') ?? 'unknown caller';
}

export function forbidSyncReads(): void {
  if (installed) return;
  installed = true;
  // The guard replaces the sync readers by name, which the class's own type does not allow.
  const proto = tf.Tensor.prototype as unknown as Record<string, unknown>;
  for (const m of METHODS) {
    proto[m] = function forbidden(): never {
      throw new SyncReadError(
        `synchronous ${m}() in ${caller()}: forbidden (SDD_FORBID_SYNC_READS=1, as on a GPU backend); read with an awaited data()`,
      );
    };
  }
}

export function syncReadsForbiddenByEnv(): boolean {
  return process.env.SDD_FORBID_SYNC_READS === '1';
}
