/**
 * sdd hqs — the HQS timestep scan of SDD runs without training: for each (prompt, seed) of an
 * experiment's sdd runs, the curve (CSV), a chart (Vega-Lite → SVG/PNG) and the selected set S.
 * Scans are cached (.cache/hqs), so a later `sdd run` reuses them.
 */
import type { CommandModule } from 'yargs';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { backendChoice, initBackend } from '../../backend/index.js';
import { planAll } from './experiments.js';
import { UserError } from '../../errors.js';
import { loadWorld } from '../../world/registry.js';
import { sddParams, runHqs, guidancePrompt } from '../../methods/sdd.js';
import { invert } from '../../methods/editing.js';
import { selectTimesteps, minMax } from '../../sdd/hqs.js';
import { hqsCurves } from '../../reports/charts.js';
import { renderSvg, svgToPng } from '../../reports/render.js';
import { reportOut } from '../../reports/build.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { table } from '../table.js';

interface HqsArgs {
  files: string[];
  set?: string[];
  profile?: string;
  out?: string;
  backend?: string;
}

export function hqsCommand(): CommandModule<object, HqsArgs> {
  return {
    command: 'hqs <files..>',
    describe: "scan HQS over timesteps for the experiments' sdd runs (curve, chart, selected S)",
    builder: (y) =>
      y
        .positional('files', { type: 'string', array: true, demandOption: true })
        .option('set', { type: 'string', array: true, describe: 'override a key: a.b.c=value (repeatable)' })
        .option('profile', { type: 'string', describe: 'apply a named profile from the file' })
        .option('out', { type: 'string', describe: 'folder for hqs/ (default: the reports folder)' }) as never,
    handler: async (a) => {
      const runs = planAll(a.files, { sets: a.set, profile: a.profile }).filter((r) => r.config.method.name === 'sdd');
      if (!runs.length) throw new UserError(`${a.files.join(', ')}: no sdd runs to scan`);
      await initBackend(backendChoice(a.backend));
      const dir = join(reportOut(a.out), 'hqs');
      mkdirSync(dir, { recursive: true });
      const rows: Array<Array<string | number>> = [];
      const seen = new Set<string>();
      for (const r of runs) {
        const p = sddParams.parse(r.config.method.params);
        const key = `${p.prompt}|${r.config.seed}|${JSON.stringify(p.hqs)}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const world = loadWorld(r.config.world);
        const prompt = world.prompts.find((x) => x.id === p.prompt);
        if (!prompt) throw new UserError(`method.params.prompt: unknown prompt '${p.prompt}'`);
        const trainW = invert(world, world.trainImages(p.train_images));
        const t0 = performance.now();
        const scan = runHqs(world, p, r.config.seed, trainW, guidancePrompt(p, prompt));
        trainW.dispose();
        // Every selection setting the experiment uses for this prompt and seed.
        const settings = runs.map((x) => sddParams.parse(x.config.method.params)).filter((x) => x.prompt === p.prompt).map((x) => x.selection);
        const sels = [...new Map(settings.map((x) => [JSON.stringify(x), x])).values()].map((x) => ({ x, s: x.strategy === 'random' ? null : selectTimesteps(scan.timesteps, scan.hqs, x) }));
        const sel = sels.find((v) => v.s)?.s ?? null;
        const base = `${p.prompt.replace(/[^a-z0-9_-]+/gi, '_')}-seed${r.config.seed}`;
        writeFileAtomic(join(dir, `${base}.csv`), `t,N,H,hqs_${scan.form}\n${scan.timesteps.map((t, i) => `${t},${scan.N[i]},${scan.H[i]},${scan.hqs[i]}`).join('\n')}\n`);
        const [nN, nH] = [minMax(scan.N), minMax(scan.H)];
        const points = scan.timesteps.map((t, i) => ({ series: prompt.text, t, N: nN[i], H: nH[i], hqs: scan.hqs[i], selected: sel?.timesteps.includes(t) ?? false }));
        const svg = await renderSvg(hqsCurves(points, `HQS: ${prompt.text}`));
        writeFileAtomic(join(dir, `${base}.svg`), svg);
        writeFileAtomic(join(dir, `${base}.png`), svgToPng(svg));
        const peak = scan.timesteps[scan.hqs.indexOf(Math.max(...scan.hqs))];
        const label = (v: (typeof sels)[number]) => (v.s ? `${v.x.strategy}${v.x.xi !== undefined ? ` ξ=${v.x.xi}` : ''}: {${v.s.timesteps.join(' ')}}` : `random ${v.x.range.join('..')}`);
        rows.push([p.prompt, r.config.seed, peak, sels.map(label).join('; '), ((performance.now() - t0) / 1000).toFixed(1)]);
      }
      process.stdout.write(table(['prompt', 'seed', 'peak t', 'S', 'scan s'], rows.map((x) => x.map(String))) + `\ncurves and charts in ${dir}\n`);
    },
  };
}
