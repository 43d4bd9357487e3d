/**
 * Metric names an experiment file may list (`metrics: [fid, kid, …]`), torch-fidelity style: one
 * file per metric, results under stable keys. Unknown names are rejected with a suggestion.
 */
import { didYouMean } from '../util/suggest.js';

export interface MetricInfo {
  name: string;
  /** Keys this metric contributes to a result. */
  keys: string[];
  /** Which way is better (regression reports need it). */
  better: 'lower' | 'higher';
  file: string;
  describe: string;
}

const METRICS: MetricInfo[] = [
  { name: 'fid', keys: ['fid'], better: 'lower', file: 'fid.ts', describe: 'Fréchet distance of feature Gaussians (edited vs original)' },
  { name: 'kid', keys: ['kid_mean', 'kid_std'], better: 'lower', file: 'kid.ts', describe: 'kernel (polynomial) MMD², unbiased, over seeded subsets' },
  { name: 'clip_directional', keys: ['clip_directional'], better: 'higher', file: 'clip.ts', describe: 'cos(ΔI, ΔT) per item, averaged' },
  { name: 'clip_score', keys: ['clip_score'], better: 'higher', file: 'clip.ts', describe: '100·cos(E_I, E_T), clamped at 0' },
  { name: 'attr_accuracy', keys: ['hit_rate', 'preservation_rate', 'hit_and_preserved'], better: 'higher', file: 'attributes.ts', describe: 'target reached / others kept, by the attribute heads' },
  { name: 'identity', keys: ['identity'], better: 'higher', file: 'attributes.ts', describe: 'cosine of identity embeddings, edited vs source' },
  { name: 'total_time', keys: ['tau_train_s', 'tau_infer_s', 'tau_total_s'], better: 'lower', file: 'total_time.ts', describe: 'Eq. 13–15 from measured τ_train and τ_infer' },
];

const BY_NAME = new Map(METRICS.map((m) => [m.name, m]));

export function metricNames(): string[] {
  return METRICS.map((m) => m.name);
}

export function getMetric(name: string): MetricInfo {
  const m = BY_NAME.get(name);
  if (!m) throw new RangeError(`unknown metric '${name}'${didYouMean(name, metricNames())}`);
  return m;
}
