/**
 * sdd regress — does a new checkpoint (or setting) change editing quality? Runs (or reuses) an
 * experiment on both sides with the same prompts, seeds and images, compares them pairwise, writes
 * a report page, and exits 1 on a regression (0 otherwise, 2 on bad input).
 *   REF = zoo:DIR       the world's models from DIR (a copy of datasets/toyfaces/zoo with new weights)
 *       | weights:MODEL=FILE   the shipped zoo with one model's weights replaced by FILE (safetensors)
 *       | set:K=V;K=V   overrides of the experiment (e.g. set:method.params.iterations=30)
 *       | store:DIR     runs already in that store
 * Each side keeps its own store under <store>/.regress/<ref hash>/ (run ids do not see weights;
 * src/regress/sides.ts), which `sdd ls` lists.
 */
import { withEngineOption } from '../plan_options.js';
import type { CommandModule } from 'yargs';
import { existsSync, mkdirSync, readFileSync, copyFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { execa } from 'execa';
import { RunFailedError, UserError } from '../../errors.js';
import { planAll } from './experiments.js';
import { loadExperiment } from '../../experiments/load.js';
import { RunStore } from '../../runs/store.js';
import { PROJECT_ROOT } from '../../util/env.js';
import {
  ZOO_DIR,
  loadParams,
  loadParamsFile,
  modelDir,
  zooModels,
  type ModelCard,
} from '../../../datasets/toyfaces/zoo/store.js';
import { backendChoice, initBackend } from '../../backend/index.js';
import { sha256 } from '../../util/hash.js';
import { asFloat32, readSafetensors } from '../../util/safetensors.js';
import { writeFileAtomic, writeJsonAtomic } from '../../util/atomic.js';
import { compareSides, type Comparison, type SideRun } from '../../regress/compare.js';
import { recordSide, sideStore } from '../../regress/sides.js';
import { fmtSig, interval } from '../../reports/html.js';
import { table } from '../table.js';

interface RegressArgs {
  file: string;
  baseline: string;
  candidate: string;
  json: boolean;
  profile?: string;
  set?: string[];
  store?: string;
  out?: string;
  backend?: string;
}

interface Side {
  ref: string;
  store: string;
  sets: string[];
  env: Record<string, string>;
  reuseOnly: boolean;
  /** Loads the side's models strictly (after the backend is up); throws a one-line UserError. */
  check?: () => void;
  /** Writes what the side's runs need (only once both sides and the experiment are checked). */
  prepare?: () => void;
}

function parseRef(ref: string, root: string, flag: string): Side {
  const colon = ref.indexOf(':');
  const kind = colon > 0 ? ref.slice(0, colon) : '';
  const value = ref.slice(colon + 1);
  const dir = sideStore(root, ref);
  // A side run here, in its own store (run ids do not see weights).
  const fresh = { ref, store: dir, sets: [], reuseOnly: false };
  if (kind === 'zoo') {
    const zoo = resolve(value);
    if (!value || !existsSync(zoo)) throw new UserError(`--${flag}: zoo folder '${value}' does not exist`);
    if (!statSync(zoo).isDirectory()) {
      throw new UserError(`--${flag}: ${value}: not a folder (zoo:DIR names a copy of datasets/toyfaces/zoo)`);
    }
    return { ...fresh, env: { SDD_ZOO_DIR: zoo }, check: () => checkZoo(zoo, value, flag) };
  }
  if (kind === 'weights') {
    const { model, file } = weightsSpec(value, flag);
    const out = join(dir, 'zoo');
    const prepare = () => zooWithWeights(model, file, out);
    return { ...fresh, env: { SDD_ZOO_DIR: out }, check: () => checkWeights(model, file), prepare };
  }
  if (kind === 'set') {
    const sets = value.split(';').filter(Boolean);
    if (!sets.length) throw new UserError(`--${flag}: set: needs KEY=VALUE[;…], got '${ref}'`);
    return { ref, store: dir, sets, env: {}, reuseOnly: false };
  }
  if (kind === 'store') {
    if (!value || !existsSync(value)) throw new UserError(`--${flag}: store '${value}' does not exist`);
    if (!statSync(value).isDirectory()) throw new UserError(`--${flag}: store ${value}: not a folder`);
    return { ref, store: resolve(value), sets: [], env: {}, reuseOnly: true };
  }
  throw new UserError(`--${flag}: expected zoo:DIR, weights:MODEL=FILE, set:KEY=VALUE[;…] or store:DIR, got '${ref}'`);
}

/** MODEL=FILE of a weights: ref, checked for a zoo model name and a readable safetensors file. */
function weightsSpec(spec: string, flag: string): { model: string; file: string } {
  const eq = spec.indexOf('=');
  const model = eq > 0 ? spec.slice(0, eq) : '';
  const models = zooModels();
  if (!models.includes(model)) {
    const got = eq >= 0 ? model : spec;
    throw new UserError(`--${flag}: weights:MODEL=FILE needs a zoo model name (${models.join(', ')}), got '${got}'`);
  }
  const given = spec.slice(eq + 1);
  if (!given) throw new UserError(`--${flag}: weights:${model}=FILE: no file given`);
  try {
    readSafetensors(given); // a clear error now rather than inside a run
  } catch (e) {
    if (e instanceof UserError) throw new UserError(`--${flag}: ${e.message}`);
    throw e;
  }
  return { model, file: resolve(given) };
}

/** The candidate file loaded strictly as MODEL: every tensor the model reads, in its shape, and no others. */
function checkWeights(model: string, file: string): void {
  loadParamsFile(model, relative(process.cwd(), file) || file).dispose();
}

/** Every model of a zoo folder other than the shipped one loads strictly (card, hash, tensors). */
function checkZoo(zoo: string, shown: string, flag: string): void {
  if (resolve(zoo) === resolve(ZOO_DIR)) return; // the shipped zoo: `sdd zoo verify` checks it
  for (const name of zooModels()) {
    // The world runs without DiffAE when its zoo has none (world_models.ts); every other model is needed.
    if (name === 'diffae' && !existsSync(join(zoo, name))) continue;
    try {
      loadParams(name, zoo).params.dispose();
    } catch (e) {
      if (e instanceof UserError) throw new UserError(`--${flag}: zoo:${shown}: ${e.message}`);
      throw e;
    }
  }
}

/**
 * A copy of the shipped zoo in `out` whose MODEL weights are FILE (its card's hash and size
 * updated, the replacement recorded): a new checkpoint of one model, compared like a zoo folder.
 */
function zooWithWeights(model: string, file: string, out: string): void {
  const models = zooModels();
  for (const name of models) {
    mkdirSync(join(out, name), { recursive: true });
    for (const f of readdirSync(modelDir(name))) copyFileSync(join(modelDir(name), f), join(out, name, f));
  }
  const bytes = readFileSync(file);
  const cardPath = join(out, model, 'card.json');
  const card = JSON.parse(readFileSync(cardPath, 'utf-8')) as ModelCard & { replaced_from?: string };
  writeFileAtomic(join(out, model, card.weights.file), bytes);
  card.weights.sha256 = sha256(bytes);
  card.weights.bytes = bytes.length;
  card.replaced_from = file;
  writeJsonAtomic(cardPath, card);
}

/** A finished run's per-item values and FID features, as compareSides reads them. */
function readSideRun(dir: string, seed: number): SideRun {
  const text = readFileSync(join(dir, 'artifacts', 'items.json'), 'utf-8');
  const items = JSON.parse(text) as SideRun['items'] & { prompt: string };
  const st = readSafetensors(join(dir, 'artifacts', 'features.safetensors'));
  const o = st.tensors.get('original')!;
  const features = { original: asFloat32(o), edited: asFloat32(st.tensors.get('edited')!), dims: o.shape[1] };
  return { prompt: items.prompt, seed, items, features };
}

/** Runs what the side has not finished yet in its own store (`sdd run` in a child process). */
async function runMissing(file: string, side: Side, sets: string[], profile?: string, runs = 0): Promise<void> {
  const flags = [...(profile ? ['--profile', profile] : []), ...sets.flatMap((s) => ['--set', s])];
  const args = ['run', file, '--store', side.store, '--no-report', '--jobs', '2', ...flags];
  process.stderr.write(`regress: ${side.ref}: running ${runs} runs (finished ones are reused)\n`);
  const cli = join(PROJECT_ROOT, 'bin', 'sdd.mjs');
  const opts = { env: side.env, reject: false, stdio: ['ignore', 'ignore', 'inherit'] } as const;
  const r = await execa(process.execPath, [cli, ...args], opts);
  if (r.exitCode !== 0) {
    const where = `its errors are above; sdd ls --store ${side.store}`;
    throw new RunFailedError(`regress: ${side.ref}: sdd run exited ${r.exitCode} (${where})`);
  }
}

async function runSide(file: string, side: Side, a: RegressArgs): Promise<SideRun[]> {
  const sets = [...(a.set ?? []), ...side.sets];
  const planned = planAll([file], { sets, profile: a.profile });
  const store = new RunStore(side.store);
  if (!side.reuseOnly) {
    mkdirSync(side.store, { recursive: true });
    recordSide(side.store, { ref: side.ref, file: resolve(file), profile: a.profile ?? null });
    await runMissing(file, side, sets, a.profile, planned.length);
  }
  return planned.map((p) => {
    if (!store.isFinished(p.id)) {
      throw new UserError(`regress: ${side.ref}: run ${p.id} is not finished in ${side.store}`);
    }
    return readSideRun(store.dir(p.id), p.config.seed);
  });
}

/** Each side's overrides plan (a bad set: names the side's flag). */
function checkSides(a: RegressArgs, sides: Array<[Side, string]>): void {
  for (const [side, flag] of sides) {
    try {
      planAll([a.file], { sets: [...(a.set ?? []), ...side.sets], profile: a.profile });
    } catch (e) {
      if (e instanceof UserError && side.sets.length) throw new UserError(`--${flag}: ${side.ref}: ${e.message}`);
      throw e;
    }
  }
}

function printComparisons(rows: Comparison[], page: string, json: boolean): void {
  const regressed = rows.filter((r) => r.verdict === 'regressed');
  if (json) {
    process.stdout.write(JSON.stringify({ regressed: regressed.length > 0, page, comparisons: rows }, null, 2) + '\n');
    return;
  }
  const cells = rows.map((r) => [
    r.metric,
    r.prompt,
    fmtSig(r.delta),
    interval(r.lo, r.hi),
    fmtSig(r.p_adjusted, 2),
    r.mde === null ? '—' : fmtSig(r.mde, 2),
    r.verdict,
  ]);
  process.stdout.write(table(['metric', 'prompt', 'Δ', '95% CI', 'p (BH)', 'MDE', 'verdict'], cells) + '\n');
  const verdict = regressed.length ? `REGRESSION on ${regressed.length} metric × prompt cells` : 'no regression';
  process.stdout.write(`${verdict} · ${page}\n`);
}

const REF = 'zoo:DIR | weights:MODEL=FILE | set:K=V;… | store:DIR';

export function regressCommand(setCode: (c: number) => void): CommandModule<object, RegressArgs> {
  return {
    command: 'regress <file>',
    describe:
      'paired comparison of a baseline and a candidate checkpoint/setting on one experiment (exit 1 on regression)',
    builder: (y) =>
      withEngineOption(y)
        .positional('file', { type: 'string', demandOption: true })
        .option('baseline', { type: 'string', default: `zoo:${join('datasets', 'toyfaces', 'zoo')}`, describe: REF })
        .option('candidate', { type: 'string', demandOption: true, describe: REF })
        .option('json', { type: 'boolean', default: false })
        .option('profile', { type: 'string' })
        .option('set', { type: 'string', array: true, describe: 'override a key on both sides' })
        .option('out', { type: 'string', describe: 'report folder (default ./reports)' }) as never,
    handler: async (a) => {
      // Everything is checked before anything is written or run: the experiment and each side's
      // overrides, then the refs, then (backend up) the models they name, loaded strictly.
      const root = resolve(a.store ?? process.env.SDD_RUNS ?? 'runs');
      const { experiment } = loadExperiment(a.file, { sets: a.set, profile: a.profile });
      const base = parseRef(a.baseline, root, 'baseline');
      const cand = parseRef(a.candidate, root, 'candidate');
      checkSides(a, [
        [base, 'baseline'],
        [cand, 'candidate'],
      ]);
      if (base.check || cand.check) await initBackend(backendChoice(a.backend));
      base.check?.();
      cand.check?.();
      base.prepare?.();
      cand.prepare?.();
      // Imported here: the renderer takes seconds to load, and bad input should fail before that.
      const { reportOut } = await import('../../reports/output.js');
      const { regressPage } = await import('../../reports/regress_page.js');
      const cfg = experiment.regression;
      const b = await runSide(a.file, base, a);
      const c = await runSide(a.file, cand, a);
      const rows = compareSides(b, c, { thresholds: cfg?.thresholds, resamples: cfg?.resamples, alpha: cfg?.alpha });
      const setup = { ...a, title: experiment.title ?? experiment.name };
      const page = await regressPage(reportOut(a.out), `regress-${experiment.name}`, rows, setup, [
        base.store,
        cand.store,
      ]);
      printComparisons(rows, page, a.json);
      setCode(rows.some((r) => r.verdict === 'regressed') ? 1 : 0);
    },
  };
}
