/**
 * The harness's check of what a method process left in contract/out/ after exiting 0: the edited
 * images (and the originals, in a world of codes) with the manifest's exact shape, float32 and
 * finite; timing.json within the wall time the harness saw; env.json. Anything else fails the run
 * with one line naming the file and key.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { NonFiniteError, type Scalar } from './types.js';
import {
  ContractError,
  nonFinite,
  readNpyF32,
  readOutJson,
  type ArrayRef,
  type ContractDirs,
  type Manifest,
} from './contract.js';

const timingSchema = z
  .object({
    tau_train_s: z.number().min(0),
    tau_infer_s: z.number().min(0),
    peak_memory_bytes: z.number().int().min(0).nullable(),
    /** Whether the timed regions were closed by a device synchronisation (false: CPU, nothing to wait for). */
    synchronized: z.boolean(),
  })
  // Further plain values (a phase's seconds, how τ was taken) are kept with the result as they are.
  .catchall(z.union([z.number(), z.string(), z.boolean(), z.null()]));

const envSchema = z.looseObject({
  interpreter: z.string().min(1),
  versions: z.record(z.string(), z.string().nullable()),
  threads: z.number().int().positive(),
  device: z.string().min(1),
  precision: z.string().min(1),
});

/** τ_train + m·τ_infer may exceed the wall time the harness saw by this much (clock granularity, start-up). */
const WALL_SLACK = { factor: 1.02, seconds: 0.5 };

export interface Outputs {
  edited: Float32Array;
  originals: Float32Array | null;
  times: { tau_train_s: number; tau_infer_s: number };
  peakMemory: number | null;
  /** timing.json's further keys. */
  timingExtra: Record<string, Scalar>;
  env: Record<string, Scalar | Record<string, string | null>>;
}

/** Images in [0, 1] as the in-process methods hand them over (editTimed clips too); NaN or ±Inf fails. */
function images(dirs: ContractDirs, ref: ArrayRef): Float32Array {
  const where = `contract/out/${ref.file}`;
  const x = readNpyF32(join(dirs.out, ref.file), where, ref.shape);
  const bad = nonFinite(x, x.length / ref.shape[0]);
  if (bad.count > 0)
    throw new NonFiniteError(`${where}: ${bad.count} non-finite values (the first in image ${bad.firstImage})`);
  for (let i = 0; i < x.length; i++) x[i] = Math.min(1, Math.max(0, x[i]));
  return x;
}

function timing(dirs: ContractDirs, m: number, wallS: number): z.infer<typeof timingSchema> {
  const t = readOutJson(dirs, 'timing.json', timingSchema);
  const claimed = t.tau_train_s + m * t.tau_infer_s;
  if (claimed > wallS * WALL_SLACK.factor + WALL_SLACK.seconds) {
    throw new ContractError(
      `contract/out/timing.json: tau_train_s + m·tau_infer_s = ${claimed.toFixed(3)} s, more than the ${wallS.toFixed(3)} s the plugin ran`,
    );
  }
  return t;
}

function env(dirs: ContractDirs): Outputs['env'] {
  const e = readOutJson(dirs, 'env.json', envSchema);
  const { interpreter, versions, threads, device, precision, ...rest } = e;
  // Further facts (TF32 switches, GPU name) are kept where they are plain values.
  const scalars = Object.entries(rest).filter(
    (kv): kv is [string, Scalar] => kv[1] === null || ['string', 'number', 'boolean'].includes(typeof kv[1]),
  );
  return { interpreter, versions, threads, device, precision, ...Object.fromEntries(scalars) };
}

export function checkOutputs(dirs: ContractDirs, manifest: Manifest, wallS: number): Outputs {
  const edited = images(dirs, manifest.outputs.edited);
  const originals = manifest.outputs.originals ? images(dirs, manifest.outputs.originals) : null;
  const t = timing(dirs, manifest.outputs.edited.shape[0], wallS);
  const { tau_train_s: _t, tau_infer_s: _i, peak_memory_bytes: _p, synchronized: _s, ...timingExtra } = t;
  return {
    timingExtra: { synchronized: t.synchronized, ...timingExtra },
    edited,
    originals,
    times: { tau_train_s: t.tau_train_s, tau_infer_s: t.tau_infer_s },
    peakMemory: t.peak_memory_bytes,
    env: env(dirs),
  };
}
