/**
 * Total time (Eq. 13–15), measured: SDD and SDEdit with the table defaults on one prompt, each at
 * two values of m (fresh scratch store, one seed). From the measured τ's: totals at the paper's
 * n = 10, m = 100, the SDD/SDEdit ratio (target ≥ 20×), and the break-even m of Eq. 15, checked
 * against the break-even of the measured totals (the lines through the two measured points).
 *   node --import tsx bench/total_time.ts [--prompt ID] [--m1 20] [--m2 100]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { initBackend } from '../src/backend/index.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { argValue, writeResult } from './common.js';

const prompt = argValue('prompt', 'hair_color:black->white');
const ms = [Number(argValue('m1', '20')), Number(argValue('m2', '100'))];
const store = mkdtempSync(join(tmpdir(), 'sdd-bench-time-'));
const bin = join(PROJECT_ROOT, 'bin', 'sdd.mjs');

interface Measured {
  m: number;
  tau_train_s: number;
  tau_infer_s: number;
  wall_s: number;
}

async function measure(file: string, m: number): Promise<Measured> {
  const t0 = performance.now();
  const args = [
    'run',
    file,
    '--store',
    store,
    '--no-report',
    '--set',
    `method.params.prompt=${prompt}`,
    '--set',
    `method.params.eval_images=${m}`,
  ];
  const method = file.includes('sdedit') ? 'sdedit' : 'sdd';
  // A cache per run, so every SDD run computes its own scan here (a cache hit would be charged
  // the original scan's time anyway, but this bench measures the scan afresh at each m).
  const r = await execa(process.execPath, [bin, ...args], {
    reject: false,
    all: true,
    env: { SDD_CACHE: join(store, `cache-${method}-${m}`) },
  });
  if (r.exitCode !== 0) throw new Error(`${file} m=${m} failed:\n${String(r.all).slice(-2000)}`);
  const ls = await execa(process.execPath, [bin, 'ls', '--json', '--store', store]);
  const id = (JSON.parse(ls.stdout) as Array<{ id: string }>)
    .map((x) => x.id)
    .find((rid) => {
      const c = JSON.parse(readFileSync(join(store, rid, 'config.json'), 'utf-8')) as {
        method: { name: string; params: { eval_images: number } };
      };
      return c.method.name === method && c.method.params.eval_images === m;
    })!;
  const mine = JSON.parse(readFileSync(join(store, id, 'result.json'), 'utf-8')) as { metrics: Record<string, number> };
  return {
    m,
    tau_train_s: mine.metrics.tau_train_s,
    tau_infer_s: mine.metrics.tau_infer_s,
    wall_s: (performance.now() - t0) / 1000,
  };
}

await initBackend('auto');
const sdd = [] as Measured[];
const sdedit = [] as Measured[];
for (const m of ms) {
  sdd.push(await measure('experiments/base/sdd.yaml', m));
  sdedit.push(await measure('experiments/base/sdedit.yaml', m));
  console.log(
    `m=${m}: sdd τ_train ${sdd.at(-1)!.tau_train_s.toFixed(1)} s, τ_infer ${(sdd.at(-1)!.tau_infer_s * 1000).toFixed(2)} ms; sdedit τ_infer ${(sdedit.at(-1)!.tau_infer_s * 1000).toFixed(1)} ms`,
  );
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const tSdd = { train: mean(sdd.map((x) => x.tau_train_s)), infer: mean(sdd.map((x) => x.tau_infer_s)) };
const tSde = { train: 0, infer: mean(sdedit.map((x) => x.tau_infer_s)) };
const n = 10;
const m = 100;
const totalSdd = n * tSdd.train + m * n * tSdd.infer;
const totalSde = m * n * tSde.infer;
const predicted = tSdd.train / (tSde.infer - tSdd.infer);
// Measured totals per prompt at m1, m2: SDD = its training + m edits; SDEdit = m edits.
const measuredSdd = sdd.map((x) => x.tau_train_s + x.m * x.tau_infer_s);
const measuredSde = sdedit.map((x) => x.m * x.tau_infer_s);
const slope = (y: number[]) => (y[1] - y[0]) / (ms[1] - ms[0]);
const icpt = (y: number[]) => y[0] - slope(y) * ms[0];
const measuredBreakEven = (icpt(measuredSdd) - icpt(measuredSde)) / (slope(measuredSde) - slope(measuredSdd));
const out = {
  prompt,
  ms,
  sdd,
  sdedit,
  n,
  m,
  total_sdd_s: totalSdd,
  total_sdedit_s: totalSde,
  ratio_sdedit_over_sdd: totalSde / totalSdd,
  target_ratio: 20,
  break_even_predicted: predicted,
  break_even_measured: measuredBreakEven,
  break_even_rel_diff: Math.abs(predicted - measuredBreakEven) / measuredBreakEven,
};
console.log(
  `n=${n}, m=${m}: SDD ${totalSdd.toFixed(0)} s vs SDEdit ${totalSde.toFixed(0)} s → ${(totalSde / totalSdd).toFixed(1)}× (target ≥ 20×)`,
);
console.log(
  `break-even m: Eq. 15 ${predicted.toFixed(2)} vs measured totals ${measuredBreakEven.toFixed(2)} (${(100 * out.break_even_rel_diff).toFixed(1)}%, target ≤ 10%)`,
);
console.log(writeResult('total_time', out));
