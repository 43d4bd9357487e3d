/**
 * Engine parity at the level of results (#29): SDEdit, DDIB and DiffAE compute the same images on
 * both engines (test/torch_baselines.test.ts, test/methods.test.ts), but SDD trains from the
 * harness's noise streams on torch and from tfjs's own on tfjs, so its two engines are two draws,
 * like two seeds. This runs SDD's quick Table 1 row (2 prompts) over --seeds seeds on each engine
 * and sets the engines' mean difference per prompt and metric against the spread between seeds
 * (in seed standard deviations, and Welch's t): the engines must not differ more than seeds do.
 * Also the CPU seconds of each engine's runs (user + system of the whole process tree).
 *   node --import tsx bench/engines.ts [--seeds 5] → bench/results/engines.json (~3 min on 2 cores)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mean, sampleStandardDeviation } from 'simple-statistics';
import { PROJECT_ROOT } from '../src/util/env.js';
import { argValue, writeResult } from './common.js';

const ENGINES = ['tfjs', 'torch'] as const;
const METRICS = ['fid', 'clip_directional', 'hit_rate', 'preservation_rate', 'identity'] as const;

type Runs = Map<string, Array<Record<string, number>>>;

/** The quick SDD row on `engine` in a store of its own: result metrics by prompt, and CPU seconds (GNU time). */
function runEngine(engine: string, seeds: number, root: string): { byPrompt: Runs; cpu_s: number } {
  const store = join(root, engine);
  const seedList = `[${Array.from({ length: seeds }, (_, i) => i).join(',')}]`;
  // A private device-lock folder: τ is not what this measures, and other runs may hold the shared one.
  const env = {
    ...process.env,
    SDD_RUNS: store,
    SDD_CACHE: join(root, `cache-${engine}`),
    SDD_DEVICE_LOCKS: join(root, `locks-${engine}`),
    SDD_REPORT: '0',
  };
  const args = [
    join(PROJECT_ROOT, 'bin/sdd.mjs'),
    'run',
    join(PROJECT_ROOT, 'experiments/table1/sdd.yaml'),
    '--profile',
    'quick',
    '--set',
    `seeds=${seedList}`,
    '--engine',
    engine,
    '--jobs',
    '2',
    '--no-report',
  ];
  const r = spawnSync('/usr/bin/time', ['-f', 'cpu %U %S', process.execPath, ...args], { env, encoding: 'utf-8' });
  if (r.status !== 0) throw new Error(`sdd run --engine ${engine} failed (exit ${r.status}): ${r.stderr.slice(-500)}`);
  const [user, sys] = (/cpu ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr) ?? []).slice(1).map(Number);
  const byPrompt: Runs = new Map();
  for (const id of readdirSync(store)) {
    const f = join(store, id, 'result.json');
    if (!existsSync(f)) continue;
    const m = (JSON.parse(readFileSync(f, 'utf-8')) as { metrics: Record<string, number> & { prompt: string } })
      .metrics;
    byPrompt.set(m.prompt, [...(byPrompt.get(m.prompt) ?? []), m]);
  }
  return { byPrompt, cpu_s: user + sys };
}

interface Row {
  prompt: string;
  metric: string;
  tfjs: { mean: number; sd: number };
  torch: { mean: number; sd: number };
  /** |mean difference| / the larger seed standard deviation. */
  diff_in_seed_sd: number;
  welch_t: number;
}

function compare(a: Runs, b: Runs): Row[] {
  const rows: Row[] = [];
  for (const prompt of [...a.keys()].sort()) {
    for (const metric of METRICS) {
      const xa = (a.get(prompt) ?? []).map((m) => m[metric]);
      const xb = (b.get(prompt) ?? []).map((m) => m[metric]);
      if (xa.length < 2 || xb.length < 2) continue;
      const [ma, mb, sa, sb] = [mean(xa), mean(xb), sampleStandardDeviation(xa), sampleStandardDeviation(xb)];
      const se = Math.sqrt(sa ** 2 / xa.length + sb ** 2 / xb.length) || 1e-12;
      rows.push({
        prompt,
        metric,
        tfjs: { mean: ma, sd: sa },
        torch: { mean: mb, sd: sb },
        diff_in_seed_sd: Math.abs(mb - ma) / Math.max(sa, sb, 1e-12),
        welch_t: (mb - ma) / se,
      });
    }
  }
  return rows;
}

const seeds = Number(argValue('--seeds', '5'));
const root = mkdtempSync(join(tmpdir(), 'sdd-bench-engines-'));
const [tfjs, torch] = ENGINES.map((e) => runEngine(e, seeds, root));
const rows = compare(tfjs.byPrompt, torch.byPrompt);
const f = (x: number) => x.toFixed(3).padStart(8);
for (const r of rows)
  console.log(
    `${r.prompt.padEnd(26)} ${r.metric.padEnd(18)} tfjs ${f(r.tfjs.mean)} ± ${f(r.tfjs.sd)}  torch ${f(r.torch.mean)} ± ${f(r.torch.sd)}  ${r.diff_in_seed_sd.toFixed(2)} seed-sd  t ${r.welch_t.toFixed(2)}`,
  );
console.log(
  `CPU seconds: tfjs ${tfjs.cpu_s.toFixed(1)}, torch ${torch.cpu_s.toFixed(1)} (${seeds} seeds × 2 prompts each)`,
);
console.log(
  `wrote ${writeResult('engines', { seeds, rows, cpu_s: { tfjs: tfjs.cpu_s, torch: torch.cpu_s }, store: root })}`,
);
