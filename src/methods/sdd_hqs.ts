/**
 * SDD's HQS scan and its timestep selection S, as the method, its torch twin and `sdd hqs` share
 * them: the cached scan on K training latents, its reading in the run's form and scaling, and the
 * records of S and of the curve that results carry.
 */
import * as tf from '@tensorflow/tfjs-core';
import { streamRng } from '../util/rng.js';
import { UserError } from '../errors.js';
import { worldPart, type World } from '../world/types.js';
import type { GuidancePrompt } from '../sdd/guidance.js';
import { applyMapper } from '../sdd/mapper.js';
import {
  hqsScan,
  readHqs,
  scanTimesteps,
  selectTimesteps,
  type HqsReading,
  type HqsScan,
  type Selection,
} from '../sdd/hqs.js';
import { createMapper } from '../sdd/distill.js';
import { cachedHqs, type CachedScan } from '../sdd/hqs_cache.js';
import { calibration } from '../sdd/timing.js';
import type { ResultValue } from './types.js';
import { mapperSettings, type SddParams } from './sdd_params.js';

/**
 * What an HQS scan depends on: its cache key. The form and scaling are left out on purpose: they
 * are readings of the same per-image statistics, so every form shares one scan.
 */
function hqsKey(world: World, p: SddParams, seed: number, prompt: GuidancePrompt, k: number): Record<string, unknown> {
  const { images: _k, form: _f, scale: _s, ...scan } = p.hqs;
  return {
    world: world.fingerprint,
    prompt,
    seed,
    images: k,
    train_images: p.train_images,
    scan,
    guidance: p.guidance,
    mapper: p.mapper,
    vae_sample: p.vae_sample,
  };
}

/** The scanned timesteps of the run's hqs block. */
export const scanSteps = (p: SddParams): number[] => scanTimesteps(p.hqs.from, p.hqs.to, p.hqs.stride);

/** K: the scan's images, the first of the n training codes. */
export const scanImages = (p: SddParams): number => Math.min(p.hqs.images, p.train_images);

/** The HQS scan on K training latents with an untrained mapper (seeded), cached across runs. */
export async function runHqs(
  world: World,
  p: SddParams,
  seed: number,
  trainW: tf.Tensor3D,
  prompt: GuidancePrompt,
  onStep?: (i: number, total: number) => void,
): Promise<CachedScan> {
  const timesteps = scanSteps(p);
  const k = Math.min(p.hqs.images, trainW.shape[0]);
  return cachedHqs(hqsKey(world, p, seed, prompt, k), async () => {
    const rng = streamRng(seed, 'hqs');
    const untrained = createMapper(world, mapperSettings(p), rng.int(2 ** 31));
    const style = worldPart(world, 'style', 'SDD');
    const images = tf.tidy(() =>
      style.generate(
        applyMapper(untrained, tf.slice(trainW, [0, 0, 0], [k, -1, -1]) as tf.Tensor3D, style, {
          ...mapperSettings(p),
          step: p.hqs.mapper_step,
        }),
      ),
    );
    untrained.dispose();
    try {
      const settings = { guidance: p.guidance, vae_sample: p.vae_sample, top_k_per: p.hqs.top_k_per };
      const cal = calibration('hqs', 'timestep', timesteps.length);
      return await hqsScan(world, images, prompt, timesteps, settings, rng, (i) => onStep?.(i, timesteps.length), cal);
    } finally {
      images.dispose();
    }
  });
}

/** The curve a run selects with: its form and scaling read from the scan. */
export function hqsOf(p: SddParams, scan: HqsScan): HqsReading {
  return readHqs(scan.stats, p.hqs.form, p.hqs.scale);
}

/** S under the run's selection settings: from the scan, or uniform over the range without one. */
export function selectionFor(p: SddParams, scan: HqsScan | null): Selection {
  if (p.selection.strategy === 'threshold' && p.selection.xi === undefined)
    throw new UserError('method.params.selection.xi: required for strategy threshold');
  if (!scan) return selectTimesteps([], [], { strategy: 'random', range: p.selection.range });
  try {
    return selectTimesteps(scan.timesteps, hqsOf(p, scan).hqs, p.selection);
  } catch (e) {
    throw new UserError(`method.params.selection.xi: ${(e as Error).message}`);
  }
}

/** A result's `selection`: S's strategy, size and mean HQS; its timesteps when there are at most 50. */
export function selectionRecord(selection: Selection, meanHqs: number | null): Record<string, ResultValue> {
  return {
    strategy: selection.strategy,
    size: selection.size,
    mean_hqs: meanHqs,
    timesteps: selection.size <= 50 ? selection.timesteps : [],
  };
}

/** A result's `hqs_curve`: the scanned t and the curve in the run's form and scaling. */
export function hqsCurve(p: SddParams, scan: HqsScan): Record<string, ResultValue> {
  return { t: scan.timesteps, hqs: hqsOf(p, scan).hqs, form: p.hqs.form, scale: p.hqs.scale };
}
