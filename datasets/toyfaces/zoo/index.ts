/** The toyfaces zoo: each model's training and evaluation entry points, by name. */
import type { WorkerPool } from '../../../src/backend/pool.js';
import type { ProgressReporter } from '../../../src/exec/progress.js';
import { loadImageSet } from '../cache.js';
import { FEATNET_TRAIN, evalFeatnet, trainFeatnet } from '../train/featnet.js';
import type { FeatNetConfig } from '../models/featnet.js';
import { loadParams, readCard, type ModelCard } from './store.js';

/** Smaller runs for smoke tests; defaults are each model's card settings. */
export interface TrainOverrides {
  steps?: number;
  trainN?: number;
  evalN?: number;
}

export interface ZooEntry {
  role: string;
  train(pool: WorkerPool, overrides: TrainOverrides, progress: ProgressReporter, log: (s: string) => void): Promise<ModelCard>;
  /** Recomputes the card's numbers from the shipped weights. */
  evaluate(pool: WorkerPool): Promise<Record<string, unknown>>;
}

export const ZOO: Record<string, ZooEntry> = {
  featnet: {
    role: 'FID feature net + attribute heads',
    train: (pool, o, progress, log) => trainFeatnet(pool, { ...FEATNET_TRAIN, ...defined(o) }, progress, log),
    async evaluate(pool) {
      const card = readCard('featnet');
      const { params } = loadParams('featnet');
      const n = (card.metrics.eval as { n: number }).n;
      const size = (card.training.data as { size: number }).size;
      const test = await loadImageSet('test', n, size, pool);
      const accuracy = await evalFeatnet(params, card.architecture as unknown as FeatNetConfig, test);
      params.dispose();
      return { eval: { split: 'test', n }, accuracy };
    },
  },
};

export const ZOO_NAMES = Object.keys(ZOO);

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
