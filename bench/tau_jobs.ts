/**
 * τ_train independent of `--jobs` (#30): the quick SDD row of Table 1 (two prompts, so `--jobs 2`
 * runs them side by side) at `--jobs 1` and `--jobs 2`, `--repeats` times with the order of the
 * two alternating, each in a fresh store and HQS cache (every run scans and trains afresh). For
 * each run id: τ_train at jobs 2 over τ_train at jobs 1 (the calibrated protocol,
 * src/util/calibration.ts; on a single-threaded CPU backend its clock is CPU time), beside the
 * same ratio of the scan's and distillation's wall time (what τ was before). Pass: the median
 * ratio within 15%. The machine, its load and the backend are recorded;
 * other processes on the machine are outside the lock, so a loaded machine widens the spread.
 *   node --import tsx bench/tau_jobs.ts [--repeats 3] [--iterations 20]      (make bench-tau)
 */
import { mkdtempSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { PROJECT_ROOT } from '../src/util/env.js';
import { argValue, med, writeResult } from './common.js';

const repeats = Number(argValue('repeats', '3'));
const iterations = argValue('iterations', '20');
const root = mkdtempSync(join(tmpdir(), 'sdd-bench-tau-'));
const bin = join(PROJECT_ROOT, 'bin', 'sdd.mjs');
const FILE = 'experiments/table1/sdd.yaml';

interface RunTimes {
  prompt: string;
  tau_train_s: number;
  distill_s: number;
  distill_wall_s: number;
  hqs_s: number;
  train_median_s: number;
  train_median_wall_s: number;
  clock: string;
  train_k: number;
  lock_wait_s: number;
  lock_held: boolean;
  backend: string;
}

type Metrics = Record<string, unknown> & { timing: { train: Record<string, number | boolean> } };

function readRun(dir: string): RunTimes {
  const m = (JSON.parse(readFileSync(join(dir, 'result.json'), 'utf-8')) as { metrics: Metrics }).metrics;
  const env = JSON.parse(readFileSync(join(dir, 'env.json'), 'utf-8')) as { backend?: { choice?: string } };
  const t = m.timing.train;
  return {
    prompt: String(m.prompt),
    tau_train_s: Number(m.tau_train_s),
    distill_s: Number(m.distill_s),
    distill_wall_s: Number(m.distill_wall_s),
    hqs_s: Number(m.hqs_s),
    train_median_s: Number(t.median_s),
    train_median_wall_s: Number(t.median_wall_s),
    clock: String(t.clock),
    train_k: Number(t.k),
    lock_wait_s: Number(t.lock_wait_s),
    lock_held: Boolean(t.lock_held),
    backend: env.backend?.choice ?? 'unknown',
  };
}

/** One `sdd run` of the quick SDD row at `jobs`, in a store and cache of its own: τ per run id. */
async function once(jobs: number, tag: string): Promise<Record<string, RunTimes>> {
  const store = join(root, tag);
  const args = [
    'run',
    FILE,
    '--profile',
    'quick',
    '--jobs',
    String(jobs),
    '--store',
    store,
    '--no-report',
    '--set',
    `method.params.iterations=${iterations}`,
    '--set',
    'method.params.eval_images=4',
  ];
  const t0 = performance.now();
  const r = await execa(process.execPath, [bin, ...args], {
    reject: false,
    all: true,
    cwd: PROJECT_ROOT,
    env: { SDD_CACHE: join(root, `cache-${tag}`) },
  });
  if (r.exitCode !== 0) throw new Error(`jobs ${jobs} failed:\n${String(r.all).slice(-2000)}`);
  const out: Record<string, RunTimes> = {};
  for (const id of readdirSync(store))
    if (existsSync(join(store, id, 'result.json'))) out[id] = readRun(join(store, id));
  console.log(
    `${tag}: ${((performance.now() - t0) / 1000).toFixed(0)} s, load ${loadavg()[0].toFixed(1)}; ` +
      Object.values(out)
        .map(
          (x) =>
            `${x.prompt} τ_train ${x.tau_train_s.toFixed(2)} s (wall ${(x.hqs_s + x.distill_wall_s).toFixed(2)} s)`,
        )
        .join('; '),
  );
  return out;
}

const rows: Array<{ repeat: number; jobs: number; runs: Record<string, RunTimes> }> = [];
const loadBefore = loadavg();
for (let r = 0; r < repeats; r++) {
  // Alternate which goes first, so a drift in the machine's load does not favour one side.
  for (const jobs of r % 2 === 0 ? [1, 2] : [2, 1])
    rows.push({ repeat: r, jobs, runs: await once(jobs, `r${r}-j${jobs}`) });
}

/** Per run id and repeat: the jobs-2 value over the jobs-1 value of `key`. */
function ratios(key: (x: RunTimes) => number): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (let r = 0; r < repeats; r++) {
    const [one, two] = [1, 2].map((j) => rows.find((x) => x.repeat === r && x.jobs === j)!.runs);
    for (const id of Object.keys(one)) if (two[id]) (out[one[id].prompt] ??= []).push(key(two[id]) / key(one[id]));
  }
  return out;
}

const tau = ratios((x) => x.tau_train_s);
const wall = ratios((x) => x.hqs_s + x.distill_wall_s);
const all = (o: Record<string, number[]>) => Object.values(o).flat();
const medianRatio = med(all(tau));
const summary = {
  tau_train_ratio_jobs2_over_jobs1: {
    median: medianRatio,
    per_prompt: Object.fromEntries(Object.entries(tau).map(([p, v]) => [p, { median: med(v), all: v }])),
  },
  wall_ratio_jobs2_over_jobs1: {
    median: med(all(wall)),
    per_prompt: Object.fromEntries(Object.entries(wall).map(([p, v]) => [p, { median: med(v), all: v }])),
  },
  tau_train_s: Object.fromEntries(
    [1, 2].map((j) => [
      `jobs${j}`,
      Object.fromEntries(
        Object.keys(tau).map((p) => [
          p,
          med(
            rows
              .filter((x) => x.jobs === j)
              .flatMap((x) =>
                Object.values(x.runs)
                  .filter((v) => v.prompt === p)
                  .map((v) => v.tau_train_s),
              ),
          ),
        ]),
      ),
    ]),
  ),
  within_15pct: Math.abs(medianRatio - 1) <= 0.15,
};
const first = rows[0] ? Object.values(rows[0].runs)[0] : undefined;
const backend = first?.backend ?? 'unknown';
const path = writeResult('tau_jobs', {
  file: FILE,
  profile: 'quick',
  iterations: Number(iterations),
  eval_images: 4,
  repeats,
  run_backend: backend,
  clock: first?.clock ?? 'unknown',
  load_before: loadBefore,
  load_after: loadavg(),
  summary,
  rows,
});
console.log(
  `τ_train jobs 2 / jobs 1: median ${medianRatio.toFixed(3)} (${summary.within_15pct ? 'within' : 'NOT within'} 15%); wall time ratio ${summary.wall_ratio_jobs2_over_jobs1.median.toFixed(3)}`,
);
for (const [p, v] of Object.entries(summary.tau_train_s.jobs1))
  console.log(`  ${p}: τ_train ${v.toFixed(2)} s at jobs 1, ${summary.tau_train_s.jobs2[p].toFixed(2)} s at jobs 2`);
console.log(`→ ${path}`);
