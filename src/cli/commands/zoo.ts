/** sdd zoo train | eval | verify — the embedded world's models. */
import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../../errors.js';
import { backendChoice, backendDef, initBackend, type BackendInfo } from '../../backend/index.js';
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
  for (const m of names)
    if (!ZOO[m])
      throw new UserError(`zoo: unknown model '${m}'${didYouMean(m, ZOO_NAMES)} (have: ${ZOO_NAMES.join(', ')})`);
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

function zooOptions(y: Argv): Argv<ZooArgs> {
  const tolerance =
    'eval: largest |measured − card| per number, relative to max(1, |card|) (default: 0 on wasm/cpu, ' +
    `where the cards were made, and ${GPU_EVAL_TOLERANCE} on other backends)`;
  return y
    .positional('action', { choices: ['train', 'eval', 'verify', 'grid'] as const, demandOption: true })
    .positional('models', { type: 'string', array: true })
    .option('json', { type: 'boolean', default: false })
    .option('steps', { type: 'number', describe: 'train: override the step count (smoke runs)' })
    .option('jobs', {
      alias: 'j',
      type: 'number',
      default: 1,
      describe: 'train: models trained at once, each in its own process, a model starting when those it needs are done',
    })
    .option('train-n', { type: 'number', describe: 'train: override the number of training images' })
    .option('eval-n', { type: 'number', describe: 'train: override the number of test images evaluated' })
    .option('until', {
      type: 'number',
      describe:
        'train: stop at this step with a checkpoint and no card (one model; the same command without --until resumes)',
    })
    .option('out', { type: 'string', describe: 'grid: the PNG to write (default docs/zoo-grid.png)' })
    .option('tolerance', { type: 'number', describe: tolerance })
    .option('write', {
      type: 'boolean',
      default: false,
      describe:
        'eval: store the measured numbers in the card (weights untouched), e.g. after an evaluation protocol changed',
      // yargs' builder types accumulate per option; the handler's args are ZooArgs, declared once above.
    }) as unknown as Argv<ZooArgs>;
}

export function zooCommand(setCode: (c: number) => void): CommandModule<object, ZooArgs> {
  return {
    command: 'zoo <action> [models..]',
    describe: 'train | eval | verify the toyfaces models (default: all); grid writes the README picture',
    builder: (y) => zooOptions(y),
    handler: async (a) => {
      if (a.action === 'grid') return grid(a);
      const names = namesOf(a);
      if (a.action === 'verify') return setCode(await verify(names, a));
      checkTrainFlags(a, names);
      if (a.action === 'train' && a.jobs !== 1) return setCode(await trainInProcesses(names, a));
      setCode(
        await withPool(a, (pool, info) =>
          a.action === 'train' ? train(names, a, pool) : evaluate(names, a, pool, info),
        ),
      );
    },
  };
}

async function grid(a: ZooArgs): Promise<void> {
  const out = outputFile('--out', a.out ?? 'docs/zoo-grid.png');
  await initBackend(backendChoice(a.backend));
  const { rows } = await zooGrid(out);
  process.stdout.write(`${out}: rows = ${rows.join('; ')}\n`);
}

/** The models an action covers: training in zoo (dependency) order, evaluation of what is shipped. */
function namesOf(a: ZooArgs): string[] {
  const names = a.action === 'train' ? ZOO_NAMES.filter((n) => pick(a.models).includes(n)) : pick(a.models);
  if (a.action !== 'eval' || a.models?.length) return names;
  // Evaluating "everything" means everything shipped; say what is not.
  const shipped = new Set(zooModels());
  const missing = names.filter((n) => !shipped.has(n));
  if (missing.length) process.stderr.write(`zoo eval: not shipped yet, skipped: ${missing.join(', ')}\n`);
  return names.filter((n) => shipped.has(n));
}

/** Hash and size against the card, then a strict load: exactly the model's tensors, in its shapes. */
async function verify(names: string[], a: ZooArgs): Promise<number> {
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
  else {
    for (const r of rows) {
      const what = r.ok ? ` ${r.bytes} bytes sha256 ${r.sha256!.slice(0, 16)}…` : `: ${r.error}`;
      process.stdout.write(`${r.ok ? 'ok  ' : 'FAIL'} ${r.model}${what}\n`);
    }
  }
  return rows.every((r) => r.ok) ? 0 : 1;
}

function checkTrainFlags(a: ZooArgs, names: string[]): void {
  for (const flag of ['steps', 'train-n', 'eval-n'] as const) {
    const v = a[flag];
    if (v !== undefined && (!Number.isInteger(v) || v < 1))
      throw new UserError(`--${flag}: expected a positive integer, got ${v}`);
  }
  if (a.until !== undefined) {
    if (a.action !== 'train') throw new UserError(`--until: only for zoo train`);
    if (!Number.isInteger(a.until) || a.until < 1)
      throw new UserError(`--until: expected a positive step number, got ${a.until}`);
    // A stopped model ships no card, so a model after it would train on the old one.
    if (names.length !== 1 || a.jobs !== 1) {
      throw new UserError(`--until: name exactly one model and no --jobs (got ${names.join(', ') || 'none'})`);
    }
  }
  if (a.action === 'train' && (!Number.isInteger(a.jobs) || a.jobs < 1)) {
    throw new UserError(`--jobs: expected a positive integer, got ${a.jobs}`);
  }
}

/** --jobs N: each model in its own process, started when the models it needs are done. */
async function trainInProcesses(names: string[], a: ZooArgs): Promise<number> {
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
  return failed.length ? 1 : 0;
}

/** Runs `fn` with this process's backend and a worker pool, closing the pool afterwards. */
async function withPool(a: ZooArgs, fn: (pool: WorkerPool, info: BackendInfo) => Promise<number>): Promise<number> {
  const info = await initBackend(backendChoice(a.backend));
  // On a GPU this process trains on the device; the pool only renders images, on the CPU.
  const pool = new WorkerPool(undefined, info.gpu ? 'wasm' : info.choice, [TRAIN_TASKS, TOYFACES_TASKS]);
  try {
    return await fn(pool, info);
  } finally {
    await pool.close();
  }
}

async function train(names: string[], a: ZooArgs, pool: WorkerPool): Promise<number> {
  const progress = createProgress();
  const overrides = { steps: a.steps, trainN: a['train-n'], evalN: a['eval-n'], until: a.until };
  for (const n of names) {
    const card = await ZOO[n].train(pool, overrides, progress, (s) => progress.log(s));
    if (card) progress.log(`${n}: ${JSON.stringify(card.metrics)}`);
  }
  progress.stop();
  return 0;
}

interface EvalRow {
  model: string;
  reproduces: boolean;
  written?: boolean;
  tolerance: number;
  card: unknown;
  measured: unknown;
  differences: Difference[];
}

/** Recomputes each card's numbers on the same weights: deterministic, so they must come back exactly. */
async function evaluate(names: string[], a: ZooArgs, pool: WorkerPool, info: BackendInfo): Promise<number> {
  const out: EvalRow[] = [];
  for (const n of names) {
    const card = readWeights(n).card;
    const got = await ZOO[n].evaluate(pool);
    const tol = a.tolerance ?? (backendDef(info.choice).exact ? 0 : GPU_EVAL_TOLERANCE);
    const differences = metricDifferences(card.metrics, got);
    const reproduces =
      tol === 0 ? canonicalJson(got) === canonicalJson(card.metrics) : differences.every((d) => d.within(tol));
    const plain = differences.map(({ within: _, ...d }) => d);
    const row: EvalRow = {
      model: n,
      reproduces,
      tolerance: tol,
      card: card.metrics,
      measured: got,
      differences: plain,
    };
    if (a.write && !reproduces) {
      const updated = { at: new Date().toISOString(), git: gitInfo() };
      writeJsonAtomic(join(modelDir(n), 'card.json'), { ...card, metrics: got, metrics_updated: updated });
      Object.assign(row, { reproduces: true, written: true });
    }
    out.push(row);
  }
  if (a.json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  else {
    for (const r of out) {
      process.stdout.write(`${r.reproduces ? 'ok  ' : 'DIFF'} ${r.model} ${JSON.stringify(r.measured)}\n`);
      for (const d of r.differences)
        process.stdout.write(`       ${d.key}: card ${d.card}, measured ${d.measured} (Δ ${d.delta})\n`);
    }
  }
  return out.every((r) => r.reproduces) ? 0 : 1;
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
function metricDifferences(
  card: unknown,
  got: unknown,
  key = '',
): Array<Difference & { within(tol: number): boolean }> {
  if (typeof card === 'number' && typeof got === 'number') {
    if (card === got) return [];
    const delta = got - card;
    return [{ key, card, measured: got, delta, within: (tol) => Math.abs(delta) <= tol * Math.max(1, Math.abs(card)) }];
  }
  if (card !== null && got !== null && typeof card === 'object' && typeof got === 'object') {
    const keys = new Set([...Object.keys(card), ...Object.keys(got)]);
    return [...keys].flatMap((k) =>
      metricDifferences(
        (card as Record<string, unknown>)[k],
        (got as Record<string, unknown>)[k],
        key ? `${key}.${k}` : k,
      ),
    );
  }
  if (canonicalJson(card) === canonicalJson(got)) return [];
  return [{ key, card: JSON.stringify(card), measured: JSON.stringify(got), delta: null, within: () => false }];
}
