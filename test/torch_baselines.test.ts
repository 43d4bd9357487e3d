/**
 * The PyTorch twins of SDEdit, DDIB and DiffAE (python/sdd_torch/methods/{sdedit,ddib,diffae}.py,
 * planned by their TS halves, baselines/torch_twin.ts) against the methods' TypeScript on tfjs:
 * the same tiny toyfaces runs (m = 4, one batch of 4, 6-8 DDIM steps; SDEdit at η = 1, so every
 * step also draws its noise from the batch's Rng) on both engines, the torch ones through the real
 * CLI (`sdd run --engine torch`, Debian's torch on the CPU), the tfjs ones in this process through
 * the engine registry, at the same time. Both are evaluated by the same TS evaluator, so what is
 * compared is what each run keeps of its edits, image by image:
 *   - the FID extractor's features of each edited image (artifacts/features.safetensors, float32):
 *     max |Δ| ≤ FEATURES (absolute; the features reach |f| ≈ 10);
 *   - the per-item metrics (artifacts/items.json): continuous ones within ITEMS·max(1, |v|),
 *     the attribute judge's hits and preservation equal;
 *   - the 8-bit before/after grid (artifacts/edits.png): every channel within one level.
 * The edited arrays themselves are not kept after a run; measured once with them kept (both fp32,
 * torch CPU vs tfjs wasm): max |Δ| over the images 5.6e-6 (SDEdit), 5.2e-6 (DDIB), 1.2e-6 (DiffAE)
 * at these sizes, 4.4e-6 / 3.9e-6 / 9.5e-7 at 20 steps; features max |Δ| 3.4e-5 / 3.2e-5 / 1.2e-5.
 * A twin that drew other noise, took another timestep or another guidance moves features by O(1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { sdd, tmp, writeFiles } from './helpers.js';
import { backendFromEnv, initBackend } from '../src/backend/index.js';
import { makeContext } from '../src/exec/context.js';
import { getEngine } from '../src/methods/engine.js';
import { probeTorch } from '../src/methods/engines/torch_probe.js';
import { registerBuiltinMethods } from '../src/methods/index.js';
import { getMethod } from '../src/methods/registry.js';
import { requirePython } from '../src/util/python.js';
import { readSafetensors } from '../src/util/safetensors.js';

const PYTHON = requirePython(['torch', 'numpy']);
// Features of the edited images: measured ≤ 3.4e-5 absolute, allowed 1e-3 (~30x).
const FEATURES = 1e-3;
// Per-item CLIP and identity values: measured ≤ 3.3e-6 relative (CLIP score 1.9e-4 at ~60), allowed 1e-4.
const ITEMS = 1e-4;
// The grid's 8-bit channels: images within ~1e-5 round to the same level or the next one.
const PNG_LEVELS = 1;

registerBuiltinMethods();
await initBackend(backendFromEnv());

const BASE = { prompt: 'hair_color:black->white', eval_images: 4, batch: 4 };
const CASES: Record<string, Record<string, number>> = {
  sdedit: { steps: 8, eta: 1 },
  ddib: { steps: 6 },
  diffae: { steps: 6 },
};

/** What a finished run kept of its edits. */
interface Kept {
  features: Float32Array;
  items: Record<string, unknown>;
  png: PNG;
}

function kept(runDir: string): Kept {
  const t = readSafetensors(join(runDir, 'artifacts', 'features.safetensors')).tensors.get('edited');
  assert.ok(t && t.dtype === 'F32', `${runDir}: edited features`);
  return {
    features: new Float32Array(Uint8Array.from(t.data).buffer),
    items: JSON.parse(readFileSync(join(runDir, 'artifacts', 'items.json'), 'utf-8')) as Record<string, unknown>,
    png: PNG.sync.read(readFileSync(join(runDir, 'artifacts', 'edits.png'))),
  };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function compare(name: string, torch: Kept, tfjs: Kept): void {
  const f = maxAbsDiff(torch.features, tfjs.features);
  assert.ok(f <= FEATURES, `${name}: edited images' features differ by ${f.toExponential(2)} (allowed ${FEATURES})`);
  for (const [key, ref] of Object.entries(tfjs.items)) {
    if (!Array.isArray(ref)) continue;
    const got = torch.items[key] as number[];
    assert.equal(got.length, BASE.eval_images, `${name}: items.${key}`);
    const discrete = ref.every((v) => Number.isInteger(v)) && ['hit', 'preserved', 'hit_and_preserved'].includes(key);
    if (discrete) assert.deepEqual(got, ref, `${name}: items.${key}`);
    else
      ref.forEach((v: number, i) =>
        assert.ok(
          Math.abs(got[i] - v) <= ITEMS * Math.max(1, Math.abs(v)),
          `${name}: items.${key}[${i}] torch ${got[i]} tfjs ${v}`,
        ),
      );
  }
  const png = maxAbsDiff(torch.png.data, tfjs.png.data);
  assert.ok(png <= PNG_LEVELS, `${name}: edits.png differs by ${png} levels`);
}

/** The run folders of a store by method name. */
function runsByMethod(store: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(store).map((id) => [
      (JSON.parse(readFileSync(join(store, id, 'config.json'), 'utf-8')) as { method: { name: string } }).method.name,
      join(store, id),
    ]),
  );
}

async function tfjsRuns(root: string): Promise<Record<string, Record<string, unknown>>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [name, extra] of Object.entries(CASES)) {
    const method = getMethod(name);
    const runDir = join(root, name);
    const ctx = makeContext({
      runId: `tfjs-${name}`,
      runDir,
      seed: 0,
      world: 'toyfaces',
      params: method.params.parse({ ...BASE, ...extra }),
      signal: new AbortController().signal,
      progress: () => {},
    });
    out[name] = await getEngine('tfjs').run(method, ctx, { name: 'tfjs', precision: 'fp32' });
  }
  return out;
}

/** The experiment files of the cases, in `dir`. */
function experimentFiles(dir: string): string[] {
  return Object.entries(CASES).map(([name, extra]) => {
    const params = Object.entries({ ...BASE, ...extra })
      .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
      .join(', ');
    writeFiles(dir, {
      [`${name}.yaml`]: `name: ${name}-twin\nworld: toyfaces\nmethod:\n  name: ${name}\n  params: { ${params} }\nseeds: [0]\n`,
    });
    return join(dir, `${name}.yaml`);
  });
}

const DIR = tmp('sdd-torch-baselines-');
// Calibrated τ (both sides) under locks of their own: other runs on this machine must not hold these up.
process.env.SDD_DEVICE_LOCKS = join(DIR, 'locks-tfjs');
// The reference runs, started once for both cases (the CUDA one only where torch sees a GPU).
const TFJS = tfjsRuns(join(DIR, 'tfjs'));
TFJS.catch(() => {}); // awaited by each case; a failure is reported there

/** The three methods on the torch engine through the CLI on `device`, each compared with its tfjs run. */
async function torchAgainstTfjs(device: 'cpu' | 'cuda'): Promise<void> {
  const dir = join(DIR, device);
  const store = join(dir, 'store');
  const [cli, tfjs] = await Promise.all([
    sdd(['run', ...experimentFiles(dir), '--engine', 'torch'], {
      env: { SDD_RUNS: store, SDD_PYTHON: PYTHON, SDD_TORCH_DEVICE: device, SDD_DEVICE_LOCKS: join(dir, 'locks') },
    }),
    TFJS,
  ]);
  assert.equal(cli.exitCode, 0, cli.all);
  const torch = runsByMethod(store);
  assert.deepEqual(Object.keys(torch).sort(), Object.keys(CASES).sort());
  for (const name of Object.keys(CASES)) {
    const config = JSON.parse(readFileSync(join(torch[name], 'config.json'), 'utf-8')) as { engine?: unknown };
    assert.deepEqual(config.engine, { name: 'torch', precision: 'fp32' }, `${name}: a torch run`);
    const result = (
      JSON.parse(readFileSync(join(torch[name], 'result.json'), 'utf-8')) as { metrics: Record<string, unknown> }
    ).metrics;
    assert.match((result.engine_env as { device: string }).device, new RegExp(`^${device}`));
    // The TS twin's result values: the tfjs run's own (SDEdit: strength and ⌈s·N⌉ = 4 steps run; DiffAE: α).
    for (const key of ['strength', 'steps_run', 'alpha'])
      assert.equal(result[key], tfjs[name][key], `${name}: result ${key}`);
    assert.ok((result.tau_infer_s as number) > 0 && (result.tau_train_s as number) === 0, `${name}: τ`);
    compare(name, kept(torch[name]), kept(join(DIR, 'tfjs', name)));
  }
  assert.equal(tfjs.sdedit.steps_run, 4);
}

test('SDEdit, DDIB and DiffAE on torch (CPU) edit the images the tfjs runs edit (features, per-item metrics, 8-bit grid)', () =>
  torchAgainstTfjs('cpu'));

// fp32 on CUDA (TF32 off): other kernels, the same tolerances (cuDNN's fp32 convolutions differ
// from the CPU's by summation order only). Skipped where torch sees no GPU.
test('the same on CUDA', { skip: probeTorch().gpu ? false : 'torch sees no CUDA device' }, () =>
  torchAgainstTfjs('cuda'),
);
