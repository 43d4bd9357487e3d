/**
 * The paper's setting. paper-random-tiny: SDD (HQS scan, selection, distillation through the
 * generator, VAE, UNet CFG and the ID loss), SDEdit, DDIB and StyleCLIP end to end on the paper's
 * architectures at small widths with seeded random weights, sync reads forbidden (the GPU rule).
 * world: paper from the published layouts (the tiny SD/CLIP fixtures, full-size synthetic Inception
 * and IR-SE50, a rosinality StyleGAN2 g_ema, a W+ codes file), and without its checkpoints: exit 2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../src/util/env.js';
import { f32, writeSafetensors } from '../src/util/safetensors.js';
import { values, writeSynthetic, type SyntheticSpec } from './synthetic_weights.js';
import { sdd, tmp } from './helpers.js';

const FIX = join(PROJECT_ROOT, 'test', 'fixtures');
const PAPER = join(PROJECT_ROOT, 'experiments', 'paper');
const dir = tmp('sdd-paper-');
const env = { SDD_CACHE: join(dir, 'cache'), SDD_CHECKPOINTS: '', SDD_FORBID_SYNC_READS: '1' };
type Metrics = Record<string, unknown>;
const metricsOf = (store: string, id: string) =>
  (JSON.parse(readFileSync(join(store, id, 'result.json'), 'utf-8')) as { metrics: Metrics }).metrics;

test('paper-random-tiny: SDD, SDEdit, DDIB and StyleCLIP run end to end (--profile tiny), every metric finite', async () => {
  const store = join(dir, 'random');
  const files = ['sdd', 'sdedit', 'ddib', 'styleclip'].map((f) => join(PAPER, `${f}.yaml`));
  const r = await sdd(
    ['run', ...files, '--profile', 'tiny', '--store', store, '--jobs', '2', '--backend', 'wasm', '--no-report'],
    { env },
  );
  assert.equal(r.exitCode, 0, r.all);
  const runs = readdirSync(store).filter((d) => !d.startsWith('.'));
  assert.equal(runs.length, 8, 'four methods × two prompts');
  for (const id of runs) {
    const m = metricsOf(store, id);
    assert.equal(m.world, 'paper-random-tiny');
    assert.equal(m.n, 2);
    for (const k of ['fid', 'clip_directional', 'identity', 'tau_infer_s'])
      assert.ok(Number.isFinite(m[k]), `${id} ${k}: ${m[k]}`);
    assert.deepEqual(m.models, {
      ...(m.models as object),
      weights: 'seeded random, seed 20230',
      codes: 'sampled psi 0.7 seed 20230',
    });
    assert.match((m.models as Record<string, string>).models, /^[0-9a-f]{64}$/);
  }
  const sddRuns = runs.filter((id) => existsSync(join(store, id, 'artifacts', 'hqs.csv')));
  assert.equal(sddRuns.length, 2, 'both SDD runs scanned HQS');
  for (const id of sddRuns) {
    const m = metricsOf(store, id);
    assert.ok((m.tau_train_s as number) > 0, 'τ_train measured');
    // The scan: t = 50, 350, 650, 950 (stride 300 in the tiny profile).
    assert.equal(
      readFileSync(join(store, id, 'artifacts', 'hqs.csv'), 'utf-8')
        .trim()
        .split('\n').length,
      5,
    );
  }
  const again = await sdd(
    ['run', ...files, '--profile', 'tiny', '--store', store, '--backend', 'wasm', '--no-report'],
    { env },
  );
  assert.match(again.all, /8 runs planned, 8 already finished/);
});

test('world: paper without its checkpoints stops sdd run with exit 2 and the roles, nothing written', async () => {
  const store = join(dir, 'missing');
  const r = await sdd(['run', join(PAPER, 'sdedit.yaml'), '--store', store], { env });
  assert.equal(r.exitCode, 2, r.all);
  assert.match(
    r.stderr,
    /world 'paper' is missing 5 checkpoint role\(s\): sd .*clip .*inception .*stylegan2 .*arcface .*sdd checkpoints list/,
  );
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.ok(!existsSync(store) || readdirSync(store).filter((d) => !d.startsWith('.')).length === 0);
});

test('world: paper from published layouts: a rosinality g_ema (config read from its shapes), a W+ codes file; SDEdit runs, a wrong codes shape is one line', async () => {
  const spec = (name: string) => JSON.parse(readFileSync(join(FIX, name, 'weights.json'), 'utf-8')) as SyntheticSpec;
  writeSynthetic(join(dir, 'inception.safetensors'), spec('inception'));
  writeSynthetic(join(dir, 'ir_se50.safetensors'), spec('arcface'));
  writeSynthetic(join(dir, 'g.safetensors'), spec('stylegan2'));
  writeSafetensors(
    join(dir, 'codes.safetensors'),
    new Map([['wplus', f32([3, 6, 64], values('codes', [3, 6, 64], ['uniform', 1]))]]),
  );
  writeSafetensors(
    join(dir, 'bad_codes.safetensors'),
    new Map([['wplus', f32([3, 18, 512], new Float32Array(3 * 18 * 512))]]),
  );
  const experiment = (name: string, codes: string) => {
    const file = join(dir, `${name}.yaml`);
    const ck = `{ sd: ${join(FIX, 'sd_tiny')}, clip: ${join(FIX, 'clip_tiny')}, inception: inception.safetensors, arcface: ir_se50.safetensors, stylegan2: g.safetensors, codes: ${codes} }`;
    writeFileSync(
      file,
      `include: [${join(PAPER, 'sdedit.yaml')}]\nname: ${name}\ncheckpoints: ${ck}\nmethod: { params: { eval_images: 2, steps: 4, batch: 2 } }\nsweep: { method.params.prompt: [smile] }\n`,
    );
    return file;
  };
  const store = join(dir, 'files');
  const ok = await sdd(['checkpoints', 'verify', experiment('paper-files', 'codes.safetensors'), '--backend', 'wasm'], {
    env,
  });
  assert.equal(ok.exitCode, 0, ok.all);
  assert.match(ok.stdout, /stylegan2\s+found.*16², W\+ 6 × 64, 12\.1 M parameters, with latent_avg/);
  assert.match(ok.stdout, /codes\s+found.*3 codes/);
  const r = await sdd(
    ['run', experiment('paper-files', 'codes.safetensors'), '--store', store, '--backend', 'wasm', '--no-report'],
    { env },
  );
  assert.equal(r.exitCode, 0, r.all);
  const [id] = readdirSync(store).filter((d) => !d.startsWith('.'));
  const m = metricsOf(store, id);
  assert.equal(m.world, 'paper');
  assert.ok(Number.isFinite(m.fid) && Number.isFinite(m.identity), `fid ${m.fid}, identity ${m.identity}`);
  assert.deepEqual(Object.keys(m.models as object).sort(), [
    'arcface',
    'clip',
    'codes',
    'inception',
    'sd.text_encoder',
    'sd.unet',
    'sd.vae',
    'stylegan2',
    'train_codes',
  ]);
  const bad = await sdd(
    [
      'run',
      experiment('paper-bad', 'bad_codes.safetensors'),
      '--store',
      join(dir, 'bad'),
      '--backend',
      'wasm',
      '--no-report',
    ],
    { env },
  );
  assert.notEqual(bad.exitCode, 0);
  assert.match(bad.all, /bad_codes\.safetensors: wplus is \[3,18,512\], the generator takes \[N, 6,64\]/);
});
