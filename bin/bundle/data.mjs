// The files `make bundle` copies as they are: the zoo and the experiments, the assets code names by
// URL, the torch engine and the GPU host's checks (Python side), and the bundle's own package.json.
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyInto, DAWN_PLATFORM, die, rel, ROOT, walk } from './common.mjs';

/** Files copied as they are (paths relative to the repository; folders copied whole, .ts left out). */
const DATA = ['experiments', 'datasets/toyfaces/zoo', 'datasets/paper/configs', 'datasets/paper/tokenizer'];

/** Data: the zoo and the experiments, plus any non-script file named by new URL(…, import.meta.url). */
export function copyData(out, urlAssets) {
  for (const d of DATA) {
    const files = walk(join(ROOT, d)).filter((f) => !/\.[mc]?ts$/.test(f));
    if (files.length === 0) die(`${d} is empty or missing`);
    for (const f of files) copyInto(out, f, rel(f));
  }
  for (const f of urlAssets) copyInto(out, f, rel(f));
}

/** What a GPU host runs from the bundle beside the CLI (gpu-check.sh and what it starts). */
export function copyGpuChecks(out) {
  const copy = (f) => copyInto(out, f, rel(f));
  // The torch engine (python/sdd_torch, found at PROJECT_ROOT/python) and the device parity checks
  // gpu-check.sh runs (python/tests: the twins on CUDA against the CPU, at toyfaces and full size).
  for (const f of walk(join(ROOT, 'python', 'sdd_torch')).filter(
    (p) => p.endsWith('.py') && !p.includes('__pycache__'),
  ))
    copy(f);
  for (const f of ['__init__.py', 'models_parity.py', 'device_parity.py', 'sd_parity.py', 'gan_parity.py'])
    copyInto(out, join(ROOT, 'python', 'tests', f), `python/tests/${f}`);
  // The GPU check script and bench-gpu's PyTorch twins (run by bench/gpu.mjs from PROJECT_ROOT/bench).
  copyInto(out, join(ROOT, 'bin', 'gpu-check.sh'), 'gpu-check.sh');
  chmodSync(join(out, 'gpu-check.sh'), 0o755);
  for (const f of ['unet_torch.py', 'gpu_torch.py', 'attention_torch.py', 'paper_time_torch.py'])
    copyInto(out, join(ROOT, 'bench', f), `bench/${f}`);
  // Full-size parity on a GPU host (tools/make_full_parity.py, then bench/full_parity.mjs): the Python
  // side with what it imports and reads (the tokenizer fixture); the reference checkouts come separately.
  // StyleGAN2's full-size parity (tools/make_stylegan2_fixture.py --full, then bench/stylegan2_parity.mjs).
  for (const f of [
    'make_full_parity.py',
    'make_clip_fixture.py',
    'make_sd_fixture.py',
    'sd_scheduler_cases.py',
    'st_io.py',
    'make_stylegan2_fixture.py',
    'synthetic_weights.py',
    'convert_stylegan2.py',
  ])
    copyInto(out, join(ROOT, 'tools', f), `tools/${f}`);
  for (const f of walk(join(ROOT, 'tools', 'refstubs')).filter((p) => !p.includes('__pycache__'))) copy(f);
  for (const f of walk(join(ROOT, 'test', 'fixtures', 'clip_tokenizer'))) copy(f);
}

const git = (...a) => {
  try {
    return execFileSync('git', a, { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return null;
  }
};

/** The bundle's package.json: the project's name and version, and how the bundle was built. */
export function writeManifest(out, own, bundled) {
  const sha = git('rev-parse', 'HEAD');
  const dirty = sha === null ? null : (git('status', '--porcelain', '--untracked-files=no') ?? '') !== '';
  writeFileSync(
    join(out, 'package.json'),
    JSON.stringify(
      {
        name: own.name,
        version: own.version,
        private: true,
        description: `${own.description} — offline bundle (node bin/bundle.mjs); run: node sdd.mjs --help`,
        bin: { sdd: 'sdd.mjs' },
        engines: own.engines,
        sddBundle: { gitSha: sha, dirty, builtAt: new Date().toISOString(), platform: DAWN_PLATFORM, bundled },
      },
      null,
      2,
    ) + '\n',
  );
}

/** The project's own package.json. */
export const ownPackage = () => JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf-8'));
