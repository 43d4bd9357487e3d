/**
 * sdd regress on the shipped zoo (one prompt, 48 images): a candidate whose mapper is trained for
 * 1/10 of the iterations is flagged on the editability metrics; the baseline's own runs compared
 * with themselves are within noise everywhere; a candidate that differs only in its training seeds
 * (3 per side, the two-level bootstrap) is within noise; a perturbed U-Net is flagged; exit codes
 * 0 / 1 / 2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { sdd, tmp } from './helpers.js';
import { sha256 } from '../src/util/hash.js';
import { asFloat32, f16, readSafetensors, writeSafetensors, type StTensor } from '../src/util/safetensors.js';
import { Rng } from '../src/util/rng.js';
import { standardDeviation } from 'simple-statistics';

const common = [
  '--set',
  'method.params.prompt=hair_color:black->white',
  '--set',
  'method.params.eval_images=48',
  '--set',
  'method.params.hqs.images=8',
  '--set',
  'method.params.train_images=64',
];

/** `sdd regress experiments/base/sdd.yaml --json` with the common settings, more --set, and the sides. */
function regress(sides: { baseline?: string; candidate: string; set?: string[] }, store: string, env: Env) {
  const set = (sides.set ?? []).flatMap((x) => ['--set', x]);
  const baselineFlag = sides.baseline ? ['--baseline', sides.baseline] : [];
  const args = [
    'regress',
    'experiments/base/sdd.yaml',
    ...common,
    ...set,
    ...baselineFlag,
    '--candidate',
    sides.candidate,
  ];
  return sdd([...args, '--store', store, '--out', tmp(), '--json'], { env });
}
type Env = Record<string, string>;

// One 100-iteration baseline side for all three tests (one store, one cache), so its seed-0 run
// is distilled once: the seeds test's baseline is this side with seeds [0, 1, 2] (run ids do not
// see the seed list) and the perturbed-U-Net test's is this side (≈ 27 CPU-s per run saved; the
// sides were 150 iterations here and 100 in a store of its own for the seeds test). 100 vs 10
// iterations (seed 0) measured: clip_directional Δ −0.054, p (BH) 8.5e-7, regressed.
const iterations = 'method.params.iterations=100';
const baseline = `set:${iterations}`;
const shared = { store: tmp(), env: { SDD_CACHE: tmp() } };

test('regress: a 10× shorter distillation regresses on editability; identical runs are within noise', async () => {
  const { store, env } = shared;
  const worse = await regress({ baseline, candidate: 'set:method.params.iterations=10' }, store, env);
  assert.equal(worse.exitCode, 1, worse.all.slice(-2000));
  const b = JSON.parse(worse.stdout) as { regressed: boolean; comparisons: Array<{ metric: string; verdict: string }> };
  const flagged = b.comparisons.filter((c) => c.verdict === 'regressed').map((c) => c.metric);
  assert.ok(flagged.includes('clip_directional') || flagged.includes('hit'), `flagged: ${flagged.join(', ')}`);
  const own = join(store, '.regress', sha256(baseline).slice(0, 12));
  // The sides' runs are listed by sdd ls, their experiment naming the side.
  const ls = await sdd(['ls', '--store', store]);
  assert.match(ls.stdout, new RegExp(`sdd-base \\(regress ${baseline.replace(/[.]/g, '\\.')}\\)`));
  // store: sides plan with the common --set only, so the shared setting goes there too.
  const same = await regress({ set: [iterations], baseline, candidate: `store:${own}` }, store, env);
  assert.equal(same.exitCode, 0, same.all.slice(-2000));
  const a = JSON.parse(same.stdout) as { regressed: boolean; comparisons: Array<{ verdict: string; delta: number }> };
  assert.ok(a.comparisons.every((c) => c.verdict === 'within noise' && c.delta === 0));
  const bad = await sdd(['regress', 'experiments/base/sdd.yaml', '--candidate', 'weights.bin', '--store', store]);
  assert.equal(bad.exitCode, 2);
  assert.match(
    bad.stderr,
    /--candidate: expected zoo:DIR, weights:MODEL=FILE, set:KEY=VALUE\[;…\] or store:DIR, got 'weights.bin'/,
  );
});

test('regress: a candidate that differs only in its training seeds (3 per side) is within noise', async () => {
  // Both sides at 100 iterations: the shared baseline side with seeds [0, 1, 2] on both sides'
  // command line, the candidate the same setting with seeds [3, 4, 5] (a later --set wins).
  const sides = { set: [iterations, 'seeds=[0, 1, 2]'], baseline, candidate: 'set:seeds=[3, 4, 5]' };
  const r = await regress(sides, shared.store, shared.env);
  assert.equal(r.exitCode, 0, r.all.slice(-3000));
  const j = JSON.parse(r.stdout) as {
    comparisons: Array<{ metric: string; verdict: string; delta: number; seeds: number[]; test: string }>;
  };
  assert.ok(j.comparisons.every((c) => c.seeds[0] === 3 && c.seeds[1] === 3 && c.test.startsWith('two-level')));
  // The seeds did change the edits (so "within noise" is a finding, not a tautology).
  assert.ok(j.comparisons.some((c) => c.delta !== 0));
  const flagged = j.comparisons.filter((c) => c.verdict !== 'within noise');
  assert.deepEqual(flagged, []);
});

test('regress: a diffusion U-Net with perturbed weights (weights:ldm=FILE) is flagged', async () => {
  // Every U-Net tensor (the ldm file holds the U-Net only) + N(0, (0.5·its std)²), seeded.
  const src = readSafetensors(join('datasets', 'toyfaces', 'zoo', 'ldm', 'weights.safetensors'));
  const rng = new Rng(11);
  const out = new Map<string, StTensor>();
  for (const [name, t] of src.tensors) {
    const v = asFloat32(t);
    const sd = standardDeviation(Array.from(v)) || 1e-3;
    out.set(
      name,
      f16(
        t.shape,
        v.map((x) => x + 0.5 * sd * rng.normal()),
      ),
    );
  }
  const file = join(tmp(), 'ldm-perturbed.safetensors');
  writeSafetensors(file, out);
  const r = await regress({ set: [iterations], baseline, candidate: `weights:ldm=${file}` }, shared.store, shared.env);
  assert.equal(r.exitCode, 1, r.all.slice(-3000));
  const j = JSON.parse(r.stdout) as { comparisons: Array<{ metric: string; verdict: string }> };
  const flagged = j.comparisons.filter((c) => c.verdict === 'regressed').map((c) => c.metric);
  assert.ok(flagged.length > 0, JSON.stringify(j.comparisons.map((c) => [c.metric, c.verdict])));
});
