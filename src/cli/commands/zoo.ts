/** sdd zoo train | eval | verify — the embedded world's models. */
import type { CommandModule } from 'yargs';
import { UserError } from '../../errors.js';
import { backendChoice, backendDef, initBackend } from '../../backend/index.js';
import { WorkerPool } from '../../backend/pool.js';
import { createProgress } from '../../util/progress.js';
import { didYouMean } from '../../util/suggest.js';
import { ZOO, ZOO_NAMES } from '../../../datasets/toyfaces/zoo/index.js';
import { loadParams, modelDir, readWeights, zooModels } from '../../../datasets/toyfaces/zoo/store.js';
import { outputFile } from '../paths.js';
import { zooGrid } from '../../../datasets/toyfaces/zoo/grid.js';
import { trainConcurrently } from '../../../datasets/toyfaces/zoo/schedule.js';
import { CACHE_DIR, TOYFACES_TASKS } from '../../../datasets/toyfaces/cache.js';
import { TRAIN_TASKS } from '../../train/data_parallel.js';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../util/atomic.js';
import { gitInfo } from '../../util/env.js';
import { canonicalJson } from '../../util/hash.js';

function pick(models: string[] | undefined): string[] {
  const names = models?.length ? models : ZOO_NAMES;
  for (const m of names) if (!ZOO[m]) throw new UserError(`zoo: unknown model '${m}'${didYouMean(m, ZOO_NAMES)} (have: ${ZOO_NAMES.join(', ')})`);
  return names;
}

interface ZooArgs {
  action: string;
  models?: string[];
  json: boolean;
  steps?: number;
  jobs: number;
  'train-n'?: number;
  'eval-n'?: number;
  until?: number;
  write: boolean;
  tolerance?: number;
  out?: string;
  backend?: string;
}

export function zooCommand(setCode: (c: number) => void): CommandModule<object, ZooArgs> {
  return {
    command: 'zoo <action> [models..]',
    describe: 'train | eval | verify the toyfaces models (default: all); grid writes the README picture',
    builder: (y) =>
      y
        .positional('action', { choices: ['train', 'eval', 'verify', 'grid'] as const, demandOption: true })
        .positional('models', { type: 'string', array: true })
        .option('json', { type: 'boolean', default: false })
        .option('steps', { type: 'number', describe: 'train: override the step count (smoke runs)' })
        .option('jobs', { alias: 'j', type: 'number', default: 1, describe: 'train: models trained at once, each in its own process, a model starting when those it needs are done' })
        .option('train-n', { type: 'number', describe: 'train: override the number of training images' })
        .option('eval-n', { type: 'number', describe: 'train: override the number of test images evaluated' })
        .option('until', { type: 'number', describe: 'train: stop at this step with a checkpoint and no card (one model; the same command without --until resumes)' })
        .option('out', { type: 'string', describe: 'grid: the PNG to write (default docs/zoo-grid.png)' })
        .option('tolerance', {
          type: 'number',
          describe: `eval: largest |measured − card| per number, relative to max(1, |card|) (default: 0 on wasm/cpu, where the cards were made, and ${GPU_EVAL_TOLERANCE} on other backends)`,
        })
        .option('write', { type: 'boolean', default: false, describe: 'eval: store the measured numbers in the card (weights untouched), e.g. after an evaluation protocol changed' }) as never,
    handler: async (a) => {
      if (a.action === 'grid') {
        const out = outputFile('--out', a.out ?? 'docs/zoo-grid.png');
        await initBackend(backendChoice(a.backend));
        const { rows } = await zooGrid(out);
        process.stdout.write(`${out}: rows = ${rows.join('; ')}\n`);
        return;
      }
      // Training follows zoo order (dependency order) whatever order the models were named in.
      let names = a.action === 'train' ? ZOO_NAMES.filter((n) => pick(a.models).includes(n)) : pick(a.models);
      if (a.action === 'eval' && !a.models?.length) {
        // Evaluating "everything" means everything shipped; say what is not.
        const shipped = new Set(zooModels());
        const missing = names.filter((n) => !shipped.has(n));
        if (missing.length) process.stderr.write(`zoo eval: not shipped yet, skipped: ${missing.join(', ')}\n`);
        names = names.filter((n) => shipped.has(n));
      }
      if (a.action === 'verify') {
        // Hash and size against the card, then a strict load: exactly the model's tensors, in its shapes.
        await initBackend(backendChoice(a.backend));
        const rows = names.map((n) => {
          try {
            const { card } = readWeights(n);
            loadParams(n).params.dispose();
            return { model: n, ok: true, sha256: card.weights.sha256, bytes: card.weights.bytes };
          } catch (e) {
            return { model: n, ok: false, error: (e as Error).message };
          }
        });
        if (a.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        else for (const r of rows) process.stdout.write(`${r.ok ? 'ok  ' : 'FAIL'} ${r.model}${r.ok ? ` ${r.bytes} bytes sha256 ${r.sha256!.slice(0, 16)}…` : `: ${r.error}`}\n`);
        setCode(rows.every((r) => r.ok) ? 0 : 1);
        return;
      }
      for (const flag of ['steps', 'train-n', 'eval-n'] as const) {
        const v = a[flag];
        if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new UserError(`--${flag}: expected a positive integer, got ${v}`);
      }
      if (a.until !== undefined) {
        if (a.action !== 'train') throw new UserError(`--until: only for zoo train`);
        if (!Number.isInteger(a.until) || a.until < 1) throw new UserError(`--until: expected a positive step number, got ${a.until}`);
        // A stopped model ships no card, so a model after it would train on the old one.
        if (names.length !== 1 || a.jobs !== 1) throw new UserError(`--until: name exactly one model and no --jobs (got ${names.join(', ') || 'none'})`);
      }
      if (a.action === 'train' && a.jobs !== 1) {
        if (!Number.isInteger(a.jobs) || a.jobs < 1) throw new UserError(`--jobs: expected a positive integer, got ${a.jobs}`);
        const progress = createProgress();
        const logDir = join(CACHE_DIR, '..', 'zoo-train', 'logs');
        const failed = await trainConcurrently(names, {
          jobs: a.jobs,
          needsOf: (n) => ZOO[n].needs,
          overrides: { steps: a.steps, trainN: a['train-n'], evalN: a['eval-n'] },
          backend: a.backend,
          logDir,
          progress,
        });
        progress.stop();
        if (failed.length) process.stderr.write(`zoo train: not trained: ${failed.join(', ')} (logs in ${logDir})\n`);
        setCode(failed.length ? 1 : 0);
        return;
      }
      const info = await initBackend(backendChoice(a.backend));
      // On a GPU this process trains on the device; the pool only renders images, on the CPU.
      const pool = new WorkerPool(undefined, info.gpu ? 'wasm' : info.choice, [TRAIN_TASKS, TOYFACES_TASKS]);
      try {
        if (a.action === 'train') {
          const progress = createProgress();
          for (const n of names) {
            const card = await ZOO[n].train(pool, { steps: a.steps, trainN: a['train-n'], evalN: a['eval-n'], until: a.until }, progress, (s) => progress.log(s));
            if (card) progress.log(`${n}: ${JSON.stringify(card.metrics)}`);
          }
          progress.stop();
          return;
        }
        const out: Array<Record<string, unknown>> = [];
        for (const n of names) {
          const card = readWeights(n).card;
          const got = await ZOO[n].evaluate(pool);
          // Deterministic recomputation on the same weights: the card's numbers must come back exactly.
          const tol = a.tolerance ?? (backendDef(info.choice).exact ? 0 : GPU_EVAL_TOLERANCE);
          const differences = metricDifferences(card.metrics, got);
          const reproduces = tol === 0 ? canonicalJson(got) === canonicalJson(card.metrics) : differences.every((d) => d.within(tol));
          out.push({ model: n, reproduces, tolerance: tol, card: card.metrics, measured: got, differences: differences.map(({ within: _, ...d }) => d) });
          if (a.write && !reproduces) {
            writeJsonAtomic(join(modelDir(n), 'card.json'), { ...card, metrics: got, metrics_updated: { at: new Date().toISOString(), git: gitInfo() } });
            out[out.length - 1].reproduces = true;
            out[out.length - 1].written = true;
          }
        }
        if (a.json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
        else {
          for (const r of out) {
            process.stdout.write(`${r.reproduces ? 'ok  ' : 'DIFF'} ${r.model} ${JSON.stringify(r.measured)}\n`);
            for (const d of r.differences as Difference[]) process.stdout.write(`       ${d.key}: card ${d.card}, measured ${d.measured} (Δ ${d.delta})\n`);
          }
        }
        setCode(out.every((r) => r.reproduces) ? 0 : 1);
      } finally {
        await pool.close();
      }
    },
  };
}

/**
 * Default `zoo eval --tolerance` off the CPU backends: cards were measured on wasm, and a GPU's
 * float32 kernels differ in the last bits; over 2000 test images a rate may move by a few items
 * (0.005 = 10 of 2000), a PSNR by 0.5% (0.15 dB at 29 dB).
 */
const GPU_EVAL_TOLERANCE = 0.005;

interface Difference {
  key: string;
  card: number | string;
  measured: number | string;
  delta: number | null;
}

/** Every leaf that differs between the card's metrics and a new measurement, with its size. */
function metricDifferences(card: unknown, got: unknown, key = ''): Array<Difference & { within(tol: number): boolean }> {
  if (typeof card === 'number' && typeof got === 'number') {
    if (card === got) return [];
    const delta = got - card;
    return [{ key, card, measured: got, delta, within: (tol) => Math.abs(delta) <= tol * Math.max(1, Math.abs(card)) }];
  }
  if (card !== null && got !== null && typeof card === 'object' && typeof got === 'object') {
    const keys = new Set([...Object.keys(card), ...Object.keys(got)]);
    return [...keys].flatMap((k) => metricDifferences((card as Record<string, unknown>)[k], (got as Record<string, unknown>)[k], key ? `${key}.${k}` : k));
  }
  if (canonicalJson(card) === canonicalJson(got)) return [];
  return [{ key, card: JSON.stringify(card), measured: JSON.stringify(got), delta: null, within: () => false }];
}
