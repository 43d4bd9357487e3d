/**
 * `world: real` end to end on the tiny random-weight checkpoints in the published layouts
 * (test/fixtures/sd_tiny: diffusers SD folder; clip_tiny: transformers CLIP; the FID Inception at
 * full size with synthetic weights; a folder of PNGs): SDEdit and DDIB run through the real
 * loaders, `sdd checkpoints` lists and verifies the roles, and a missing role stops `sdd run`
 * with exit 2 before anything is written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../src/util/env.js';
import { writeSynthetic, type SyntheticSpec } from './synthetic_weights.js';
import { sdd, tmp } from './helpers.js';

const FIX = join(PROJECT_ROOT, 'test', 'fixtures');
const dir = tmp('sdd-real-');
const store = join(dir, 'store');
const env = { SDD_CACHE: join(dir, 'cache'), SDD_CHECKPOINTS: '' };
writeSynthetic(
  join(dir, 'inception.safetensors'),
  JSON.parse(readFileSync(join(FIX, 'inception', 'weights.json'), 'utf-8')) as SyntheticSpec,
);
writeSynthetic(
  join(dir, 'ir_se50.safetensors'),
  JSON.parse(readFileSync(join(FIX, 'arcface', 'weights.json'), 'utf-8')) as SyntheticSpec,
);

function experiment(
  name: string,
  body: string,
  checkpoints = `{ sd: ${join(FIX, 'sd_tiny')}, clip: ${join(FIX, 'clip_tiny')}, inception: inception.safetensors, images: ${join(FIX, 'inception', 'a')} }`,
): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `include: [${join(PROJECT_ROOT, 'experiments', 'real', `${body}.yaml`)}]\nname: ${name}\ncheckpoints: ${checkpoints}\nmethod: { params: { eval_images: 4, steps: 10, batch: 2 } }\nsweep: { method.params.prompt: [smile] }\n`,
  );
  return file;
}

const WITH_ARCFACE = `{ sd: ${join(FIX, 'sd_tiny')}, clip: ${join(FIX, 'clip_tiny')}, inception: inception.safetensors, arcface: ir_se50.safetensors, images: ${join(FIX, 'inception', 'a')} }`;

test('SDEdit and DDIB run on world: real from the published layouts; identity with the optional ArcFace (DDIB), empty without (SDEdit); no hit rate', async () => {
  const files = [experiment('real-sdedit-tiny', 'sdedit'), experiment('real-ddib-tiny', 'ddib', WITH_ARCFACE)];
  const r = await sdd(['run', ...files, '--store', store, '--jobs', '2', '--backend', 'wasm'], { env });
  assert.equal(r.exitCode, 0, r.all);
  const runs = readdirSync(store).filter((d) => !d.startsWith('.'));
  assert.equal(runs.length, 2);
  let withIdentity = 0;
  for (const id of runs) {
    const m = (
      JSON.parse(readFileSync(join(store, id, 'result.json'), 'utf-8')) as { metrics: Record<string, unknown> }
    ).metrics;
    assert.equal(m.world, 'real');
    assert.equal(m.n, 4);
    for (const k of ['fid', 'kid', 'clip_directional', 'tau_infer_s'])
      assert.ok(Number.isFinite(m[k]), `${k}: ${m[k]}`);
    for (const k of ['hit_rate', 'preservation_rate']) assert.equal(m[k], null, k);
    const arcface = Object.keys(m.models as object).includes('arcface');
    if (arcface) withIdentity++;
    if (arcface)
      assert.ok(
        Number.isFinite(m.identity) && (m.identity as number) > 0 && (m.identity as number) <= 1,
        `identity ${m.identity}`,
      );
    else assert.equal(m.identity, null, 'identity without ArcFace');
    assert.deepEqual(
      Object.keys(m.models as object).sort(),
      ['clip', 'images', 'inception', 'sd.text_encoder', 'sd.unet', 'sd.vae', ...(arcface ? ['arcface'] : [])].sort(),
    );
    const info = m.metric_info as Record<string, string>;
    assert.match(info.fid_resize, /bilinear 16² → 299²/);
    assert.match(info.clip_preprocess, /bilinear resize to 32²/);
    assert.ok(existsSync(join(store, id, 'artifacts', 'edits.png')));
    assert.deepEqual(
      Object.keys((JSON.parse(readFileSync(join(store, id, 'world.json'), 'utf-8')) as { files: object }).files).sort(),
      ['clip', 'images', 'inception', 'sd', ...(arcface ? ['arcface'] : [])].sort(),
    );
  }
  assert.equal(withIdentity, 1, 'the DDIB run (with ArcFace) has identity, the SDEdit run not');
  // The same experiments again: both runs found finished (the world's fingerprint unchanged).
  const again = await sdd(['run', ...files, '--store', store, '--backend', 'wasm'], { env });
  assert.equal(again.exitCode, 0, again.all);
  assert.match(again.all, /2 runs planned, 2 already finished/);
  // Away from the checkpoints (another machine): sdd plan and sdd status still read the store.
  const away = [
    experiment(
      'real-sdedit-tiny',
      'sdedit',
      `{ sd: ${join(dir, 'moved')}, clip: ${join(dir, 'moved')}, inception: moved.safetensors, images: ${join(dir, 'moved')} }`,
    ),
  ];
  const plan = await sdd(['plan', ...away, '--store', store], { env });
  assert.equal(plan.exitCode, 0, plan.all);
  assert.match(plan.stdout, /finished/);
  const status = await sdd(['status', ...away, '--store', store], { env });
  assert.equal(status.exitCode, 0, status.all);
});

test('sdd checkpoints: list shows each role, verify loads each strictly; a missing role stops sdd run with exit 2', async () => {
  const file = experiment('real-check', 'sdedit', WITH_ARCFACE);
  const v = await sdd(['checkpoints', 'verify', file, '--backend', 'wasm'], { env });
  assert.equal(v.exitCode, 0, v.all);
  assert.match(v.stdout, /sd\s+found.*UNet 0\.3 M, VAE 0\.2 M, text encoder 0\.2 M parameters; 16² images, epsilon/);
  assert.match(v.stdout, /clip\s+found.*CLIPModel, .* parameters, ViT 32²\/8/);
  assert.match(v.stdout, /inception\s+found.*21\.8 M parameters/);
  assert.match(v.stdout, /arcface\s+found.*43\.8 M parameters/);
  const none = await sdd(['checkpoints', 'list', '--json'], { env });
  assert.equal(none.exitCode, 0, 'list answers, whatever it finds');
  const all = JSON.parse(none.stdout) as { world: string; role: string; status: string; get: string }[];
  assert.deepEqual(
    [...new Set(all.map((x) => x.world))],
    ['paper', 'real'],
    'every world with outside files (by name)',
  );
  const rows = all.filter((x) => x.world === 'real');
  assert.deepEqual(
    rows.map((x) => `${x.role}:${x.status}`),
    ['sd:missing', 'clip:missing', 'inception:missing', 'arcface:absent (optional)', 'images:missing'],
  );
  assert.match(rows[0].get, /CompVis\/stable-diffusion-v1-4/);
  assert.match(rows[2].get, /tools\/convert_pytorch_fid_inception\.py/);

  const missing = experiment(
    'real-missing',
    'sdedit',
    `{ sd: ${join(FIX, 'sd_tiny')}, clip: ${join(dir, 'nowhere')}, inception: inception.safetensors, images: ${join(FIX, 'inception', 'a')} }`,
  );
  const empty = join(dir, 'store-missing');
  const r = await sdd(['run', missing, '--store', empty, '--backend', 'wasm'], { env });
  assert.equal(r.exitCode, 2, r.all);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(
    r.stderr,
    /world 'real' is missing 1 checkpoint role\(s\): clip \(.*nowhere: not found; get: Hugging Face openai\/clip-vit-base-patch32/,
  );
  assert.ok(!existsSync(empty) || readdirSync(empty).length === 0, 'nothing written');
  const typo = join(dir, 'typo.yaml');
  writeFileSync(typo, readFileSync(file, 'utf-8').replace('clip:', 'clipp:'));
  const t = await sdd(['run', typo, '--store', empty, '--backend', 'wasm'], { env });
  assert.equal(t.exitCode, 2, t.all);
  assert.match(
    t.stderr,
    /typo\.yaml: checkpoints\.clipp: world 'real' has no such role \(have: sd, clip, inception, arcface, images\)/,
  );
});
