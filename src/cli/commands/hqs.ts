/**
 * sdd hqs — the HQS timestep scan of SDD runs without training: for each (prompt, seed) of an
 * experiment's sdd runs, the curve (CSV), a chart (Vega-Lite → SVG/PNG) and the selected set S.
 * Scans are cached (.cache/hqs), so a later `sdd run` reuses them.
 */
import { withPlanOptions, type PlanArgs } from '../plan_options.js';
import type { CommandModule } from 'yargs';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { backendChoice, initBackend } from '../../backend/index.js';
import { planAll } from '../../experiments/plan.js';
import type { PlannedRun } from '../../experiments/expand.js';
import { UserError } from '../../errors.js';
import { loadWorld } from '../../world/registry.js';
import { guidancePrompt, sddParams, type SddParams } from '../../methods/sdd_params.js';
import { hqsOf, runHqs } from '../../methods/sdd_hqs.js';
import { trainCodes } from '../../methods/editing.js';
import {
  selectTimesteps,
  minMax,
  readHqs,
  type HqsForm,
  type HqsScale,
  type HqsScan,
  type SelectionSettings,
} from '../../sdd/hqs.js';
import { hqsCurves } from '../../reports/charts.js';
import { renderSvg, svgToPng } from '../../reports/render.js';
import { reportOut } from '../../reports/build.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { table } from '../table.js';

const HQS_FORMS: HqsForm[] = ['released', 'eq11-12'];
const HQS_SCALES: HqsScale[] = ['paper', 'code'];

/** Per t: raw N and both entropies (image means), then the HQS of every form and scaling. */
function scanCsv(scan: HqsScan): string {
  const readings = HQS_FORMS.flatMap((f) => HQS_SCALES.map((s) => readHqs(scan.stats, f, s)));
  const [released, eq] = [readings[0], readings[2]];
  const head = ['t', 'N', 'H', 'H_full', ...readings.map((r) => `hqs_${r.form}_${r.scale}`)];
  const lines = scan.timesteps.map((t, i) =>
    [t, released.N[i], released.H[i], eq.H[i], ...readings.map((r) => r.hqs[i])].join(','),
  );
  return `${head.join(',')}\n${lines.join('\n')}\n`;
}

/** "threshold ξ=0.5: {500 550}" with ξ given in `from` scaling and applied in `to`. */
function selectionLabel(
  timesteps: number[],
  hqs: number[],
  x: SelectionSettings,
  from: HqsScale,
  to: HqsScale,
): string {
  if (x.strategy === 'random') return `random ${(x.range ?? [20, 980]).join('..')}`;
  const xi = x.xi === undefined || from === to ? x.xi : to === 'code' ? (x.xi + 1) / 2 : 2 * x.xi - 1;
  try {
    const s = selectTimesteps(timesteps, hqs, { ...x, xi });
    return `${x.strategy}${xi !== undefined ? ` ξ=${+xi.toFixed(3)}` : ''}: {${s.timesteps.join(' ')}}`;
  } catch (e) {
    return `${x.strategy} ξ=${xi}: ${(e as Error).message}`;
  }
}

interface HqsArgs extends PlanArgs {
  out?: string;
}

type Row = Array<string | number>;

/** Every selection setting the experiment uses for a prompt (once each), in the order of its runs. */
function selectionsOf(runs: PlannedRun[], promptId: string): SelectionSettings[] {
  const settings = runs
    .map((x) => sddParams.parse(x.config.method.params))
    .filter((x) => x.prompt === promptId)
    .map((x) => x.selection);
  return [...new Map(settings.map((x) => [JSON.stringify(x), x])).values()];
}

/** The curve's CSV, and its chart (SVG, PNG) with the first non-random setting's S marked. */
async function writeCurve(
  file: string,
  p: SddParams,
  title: string,
  scan: HqsScan,
  selections: SelectionSettings[],
): Promise<void> {
  const reading = hqsOf(p, scan);
  const sel =
    selections
      .map((x) => (x.strategy === 'random' ? null : selectTimesteps(scan.timesteps, reading.hqs, x)))
      .find((v) => v) ?? null;
  writeFileAtomic(`${file}.csv`, scanCsv(scan));
  const [nN, nH] = [minMax(reading.N), minMax(reading.H)];
  const points = scan.timesteps.map((t, i) => ({
    series: title,
    t,
    N: nN[i],
    H: nH[i],
    hqs: reading.hqs[i],
    selected: sel?.timesteps.includes(t) ?? false,
  }));
  const svg = await renderSvg(hqsCurves(points, `HQS (${p.hqs.form}, ${p.hqs.scale}): ${title}`));
  writeFileAtomic(`${file}.svg`, svg);
  writeFileAtomic(`${file}.png`, svgToPng(svg));
}

/**
 * The same scan read in every form and scaling, side by side: ξ is mapped between scalings
 * (ξ_code = (ξ_paper + 1)/2), so the rows differ only by the form's definition of HQS.
 */
function formRows(p: SddParams, seed: number, scan: HqsScan, selections: SelectionSettings[], seconds: string): Row[] {
  return HQS_FORMS.flatMap((form) =>
    HQS_SCALES.map((scale) => {
      const hqs = readHqs(scan.stats, form, scale).hqs;
      const peak = scan.timesteps[hqs.indexOf(Math.max(...hqs))];
      const chosen = form === p.hqs.form && scale === p.hqs.scale ? ' *' : '';
      const labels = selections.map((x) => selectionLabel(scan.timesteps, hqs, x, p.hqs.scale, scale));
      return [p.prompt, seed, `${form}/${scale}${chosen}`, peak, labels.join('; '), seconds];
    }),
  );
}

/** One run's scan (cached across runs), its files in `dir`, and its table rows. */
async function scanRun(r: PlannedRun, runs: PlannedRun[], dir: string): Promise<Row[]> {
  const p = sddParams.parse(r.config.method.params);
  const world = loadWorld(r.config.world);
  const prompt = world.prompts.find((x) => x.id === p.prompt);
  if (!prompt) throw new UserError(`method.params.prompt: unknown prompt '${p.prompt}'`);
  const trainW = trainCodes(world, p.train_images);
  const t0 = performance.now();
  const { scan, cached } = await runHqs(world, p, r.config.seed, trainW, guidancePrompt(p, prompt));
  trainW.dispose();
  // Every selection setting the experiment uses for this prompt and seed.
  const selections = selectionsOf(runs, p.prompt);
  const base = `${p.prompt.replace(/[^a-z0-9_-]+/gi, '_')}-seed${r.config.seed}`;
  await writeCurve(join(dir, base), p, prompt.text, scan, selections);
  const seconds =
    ((performance.now() - t0) / 1000).toFixed(1) + (cached ? ` (cached; computed in ${scan.seconds.toFixed(1)})` : '');
  return formRows(p, r.config.seed, scan, selections, seconds);
}

/** The sdd runs, one per (prompt, seed, hqs block): the others read the same scan. */
function distinctScans(runs: PlannedRun[]): PlannedRun[] {
  const seen = new Set<string>();
  return runs.filter((r) => {
    const p = sddParams.parse(r.config.method.params);
    const key = `${p.prompt}|${r.config.seed}|${JSON.stringify(p.hqs)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function hqsCommand(): CommandModule<object, HqsArgs> {
  return {
    command: 'hqs <files..>',
    describe: "scan HQS over timesteps for the experiments' sdd runs (curve, chart, selected S)",
    builder: (y) =>
      withPlanOptions(y).option('out', {
        type: 'string',
        describe: 'folder for hqs/ (default: the reports folder)',
      }) as never,
    handler: async (a) => {
      const runs = planAll(a.files, { sets: a.set, profile: a.profile }).filter((r) => r.config.method.name === 'sdd');
      if (!runs.length) throw new UserError(`${a.files.join(', ')}: no sdd runs to scan`);
      await initBackend(backendChoice(a.backend));
      const dir = join(reportOut(a.out), 'hqs');
      mkdirSync(dir, { recursive: true });
      const rows: Row[] = [];
      for (const r of distinctScans(runs)) rows.push(...(await scanRun(r, runs, dir)));
      process.stdout.write(
        table(
          ['prompt', 'seed', 'form/scale', 'peak t', 'S', 'scan s'],
          rows.map((x) => x.map(String)),
        ) + `\n* the experiment's own form; curves (every form) and charts in ${dir}\n`,
      );
    },
  };
}
