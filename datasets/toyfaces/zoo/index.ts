/** The toyfaces zoo: each model's training and evaluation entry points, by name. */
import type { WorkerPool } from '../../../src/backend/pool.js';
import type { ProgressReporter } from '../../../src/util/progress.js';
import type { ModelName } from '../../../src/nn/models.js';
import { trainZooModel, type TrainSettings, type ZooTrainSpec } from '../train/common.js';
import { FEATNET_SPEC } from '../train/featnet.js';
import { IDNET_SPEC } from '../train/idnet.js';
import { VAE_SPEC } from '../train/vae.js';
import { CLIP_SPEC } from '../train/clip.js';
import { STYLEGEN_SPEC } from '../train/stylegen.js';
import { LDM_SPEC } from '../train/ldm.js';
import { DIFFAE_SPEC } from '../train/diffae.js';
import { loadParams, readCard, type ModelCard } from './store.js';

/** Smaller runs for smoke tests; defaults are each model's card settings. */
export interface TrainOverrides {
  steps?: number;
  trainN?: number;
  evalN?: number;
  /** Stop at this step with a checkpoint, no card: the next run without it resumes there. */
  until?: number;
}

export interface ZooEntry {
  role: string;
  /** Models it loads frozen; `sdd zoo train` trains them first. */
  needs: readonly string[];
  /** The new card, or null when `overrides.until` stopped the training early. */
  train(
    pool: WorkerPool,
    overrides: TrainOverrides,
    progress: ProgressReporter,
    log: (s: string) => void,
  ): Promise<ModelCard | null>;
  /** Recomputes the card's numbers from the shipped weights. */
  evaluate(pool: WorkerPool): Promise<Record<string, unknown>>;
}

function entry<N extends ModelName>(spec: ZooTrainSpec<N>): ZooEntry {
  return {
    role: spec.role,
    needs: spec.needs,
    train: (pool, { until, ...o }, progress, log) =>
      trainZooModel({ ...spec, settings: { ...spec.settings, ...defined(o) } }, pool, progress, log, until),
    async evaluate(pool) {
      const card = readCard(spec.name);
      const { params } = loadParams(spec.name);
      try {
        // Card settings over the defaults: older cards may lack newer fields.
        return await spec.evaluate(params, pool, { ...spec.settings, ...(card.training as Partial<TrainSettings>) });
      } finally {
        params.dispose();
      }
    },
  };
}

/** The training specs by name, in zoo (dependency) order. */
export const ZOO_SPECS = {
  featnet: FEATNET_SPEC,
  idnet: IDNET_SPEC,
  // CLIP before the VAE: the VAE's perceptual term runs the frozen CLIP image tower.
  clip: CLIP_SPEC,
  vae: VAE_SPEC,
  stylegen: STYLEGEN_SPEC,
  ldm: LDM_SPEC,
  diffae: DIFFAE_SPEC,
} as const;

/** Each spec's training and evaluation entry points, in the same order. */
export const ZOO: Record<string, ZooEntry> = Object.fromEntries(
  Object.entries(ZOO_SPECS).map(([name, spec]) => [name, entry(spec)]),
);

export const ZOO_NAMES = Object.keys(ZOO);

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
