/**
 * The external method through the method contract (docs/method-contract.md), with real processes:
 * the example plugin (examples/plugins/blend/plugin.py) end to end on toyfaces beside SDEdit, the
 * run identity of a plugin's files, and hostile plugins (written here into a temp folder), each of
 * which must fail its run with a one-line error.json and no result.json.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sdd, tmp, writeFiles } from './helpers.js';
import { PROJECT_ROOT } from '../src/util/env.js';
import { canonicalJson, sha256 } from '../src/util/hash.js';
import { registerBuiltinMethods } from '../src/methods/index.js';
import { loadExperiment } from '../src/experiments/load.js';
import { expandExperiment, runId } from '../src/experiments/expand.js';
import { backendFromEnv, initBackend } from '../src/backend/index.js';
import { makeContext } from '../src/exec/context.js';
import { external, externalParams } from '../src/methods/external.js';
import { NonFiniteError } from '../src/methods/types.js';
import { loadWorld } from '../src/world/registry.js';

registerBuiltinMethods();

const PYTHON = process.env.SDD_PYTHON ?? 'python3';
const noPython = (() => {
  try {
    execFileSync(PYTHON, ['-c', 'import numpy'], { stdio: 'ignore' });
    return false;
  } catch {
    return `${PYTHON} with numpy is needed (Debian: apt-get install python3-numpy)`;
  }
})();

const plan = (file: string, profile?: string) => expandExperiment(loadExperiment(file, { profile }).experiment, file);

test('run ids: methods without a plan hook keep theirs; a plugin is identified by its files, not where they lie', async () => {
  // SDEdit's quick toyfaces run: no identity, and the id is the hash of its config as before
  // Method.plan existed (3e94efecf2ac at sdedit version 1).
  const [sdedit] = plan(join(PROJECT_ROOT, 'experiments/base/sdedit.yaml'), 'quick');
  assert.ok(!('identity' in sdedit.config));
  assert.equal(sdedit.id, sha256(canonicalJson(sdedit.config)).slice(0, 12));
  const stored = {
    experiment: 'sdedit-base',
    experiment_version: 1,
    method: {
      name: 'sdedit',
      params: {
        batch: 50,
        eta: 0,
        eval_images: 8,
        guidance_scale: 7.5,
        prompt: 'hair_color:black->white',
        sources: 'reconstructed',
        steps: 10,
        strength: 0.5,
      },
      version: 1,
    },
    metrics: [],
    point: {},
    seed: 0,
    world: 'toyfaces',
  };
  assert.equal(runId(stored), '3e94efecf2ac', 'a stored run keeps its id');
  const yaml = (dir: string) => {
    writeFiles(dir, {
      'plugin/run.py': 'print("hi")\n',
      'e.yaml':
        'name: e\nmethod: {name: external, params: {command: [python3, plugin/run.py], prompt: hair_color:black->white}}\n',
    });
    return join(dir, 'e.yaml');
  };
  const [a, b] = [plan(yaml(tmp())), plan(yaml(tmp()))].map((r) => r[0]);
  assert.equal(a.id, b.id, 'the same plugin in two places: one run');
  assert.notEqual(a.config.method.params.command, b.config.method.params.command);
  const params = a.config.method.params as { command: string[]; file_sha256: Record<string, string> };
  assert.ok(existsSync(params.command[1]), 'the script made absolute in config.json');
  assert.match(Object.values(params.file_sha256)[0], /^[0-9a-f]{64}$/);
  assert.deepEqual((a.config.identity as { command: unknown[] }).command[1], {
    file: 'run.py',
    sha256: Object.values(params.file_sha256)[0],
  });
  const edited = tmp();
  const f = yaml(edited);
  writeFileSync(join(edited, 'plugin/run.py'), 'print("changed")\n');
  assert.notEqual(plan(f)[0].id, a.id, 'an edited plugin is a new run');
  assert.ok(
    a.config.identity && !('hang_timeout_s' in a.config.identity),
    'how long a hang is waited for is not part of the id',
  );
  // Planned, then edited: the run refuses to execute other code under the planned id.
  writeFileSync(params.command[1], 'print("edited after planning")\n');
  const ctx = makeContext({
    runId: a.id,
    runDir: tmp(),
    seed: 0,
    world: 'toyfaces',
    params: externalParams.parse(a.config.method.params),
    signal: new AbortController().signal,
    progress: () => {},
  });
  await assert.rejects(external.run(ctx), {
    name: 'UserError',
    message: `method.params: ${params.command[1]}: changed since the run was planned (plan it again: its run id changes with it)`,
  });
  const missing = tmp();
  writeFiles(missing, {
    'e.yaml': 'name: e\nmethod: {name: external, params: {command: [python3, nope.py], prompt: p}}\n',
  });
  assert.throws(() => plan(join(missing, 'e.yaml')), /e\.yaml: method\.params\.command\.1: nope\.py: not found/);
});

/** What the hostile plugins share: the contract's paths and whole-file writes of valid outputs. */
const COMMON = `import json, os
import numpy as np
root = os.environ["SDD_CONTRACT_DIR"]
with open(os.path.join(root, "in", "manifest.json")) as f:
    manifest = json.load(f)
out = os.path.join(root, "out")

def put(name, write):
    tmp = os.path.join(out, name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, os.path.join(out, name))

def put_json(name, value):
    put(name, lambda f: f.write(json.dumps(value).encode()))

def sources():
    return np.load(os.path.join(root, "in", manifest["inputs"]["sources"]["file"]))

def finish(edited, tau_train=0.0):
    put("edited.npy", lambda f: np.save(f, edited))
    put_json("timing.json", {"tau_train_s": tau_train, "tau_infer_s": 0.001, "peak_memory_bytes": None, "synchronized": False})
    put_json("env.json", {"interpreter": "python3", "versions": {}, "threads": 1, "device": "cpu", "precision": "fp32"})
`;

/** Each hostile plugin, and the one line its run must fail with. */
interface Hostile {
  script: string;
  reason: RegExp;
  kind?: 'nonfinite';
  hang_timeout_s?: number;
  /** Instead of running `<name>.py` (in the folder of the scripts). */
  command?: (dir: string) => string[];
}

/** Run through `sdd run`: the failure path of a run folder (error.json, exit code, no result.json). */
const HOSTILE_RUNS: Record<string, Hostile> = {
  crash: {
    script:
      'import sys\nprint("loading", file=sys.stderr)\nprint("RuntimeError: the model exploded", file=sys.stderr)\nsys.exit(3)\n',
    reason: /^plugin exited with code 3: loading \| RuntimeError: the model exploded$/,
  },
  outside: {
    script: 'from common import *\nfinish(sources())\nwith open("result.json", "w") as f:\n    f.write("{}")\n',
    reason: /^plugin wrote outside contract\/out: result\.json \(removed\)$/,
  },
};

/** Run in this process (the world loaded once): the same method, each reason checked. */
const HOSTILE_CALLS: Record<string, Hostile> = {
  hang: {
    script: 'from common import *\nimport time\nput_json("progress.json", {"done": 0, "total": 1})\ntime.sleep(600)\n',
    reason: /^plugin showed no progress for 1 s \(hang_timeout_s\): killed$/,
    hang_timeout_s: 1,
  },
  nan: {
    script: 'from common import *\nx = sources()\nx[1, 3] = np.nan\nfinish(x)\n',
    reason: /^contract\/out\/edited\.npy: 96 non-finite values \(the first in image 1\)$/,
    kind: 'nonfinite',
  },
  garbage: {
    script: 'from common import *\nfinish(sources())\nput("edited.npy", lambda f: f.write(os.urandom(4000)))\n',
    reason: /^contract\/out\/edited\.npy: not a \.npy file \(bad magic\)$/,
  },
  count: {
    script: 'from common import *\nfinish(sources()[:1])\n',
    reason: /^contract\/out\/edited\.npy: shape \[1, 32, 32, 3\], expected \[2, 32, 32, 3\]$/,
  },
  float64: {
    script: 'from common import *\nfinish(sources().astype(np.float64))\n',
    reason: /^contract\/out\/edited\.npy: dtype <f8, expected float32 \('<f4'\)$/,
  },
  link: {
    script:
      'from common import *\nfinish(sources())\nthere = os.path.join(os.path.dirname(__file__), "elsewhere.npy")\nos.replace(os.path.join(out, "edited.npy"), there)\nos.symlink(there, os.path.join(out, "edited.npy"))\n',
    reason: /^contract\/out\/edited\.npy: not a regular file \(links are not taken\)$/,
  },
  missing: {
    script: 'from common import *\nput_json("env.json", {})\n',
    reason: /^contract\/out\/edited\.npy: missing$/,
  },
  timing: {
    script: 'from common import *\nfinish(sources(), tau_train=3600.0)\n',
    reason:
      /^contract\/out\/timing\.json: tau_train_s \+ m·tau_infer_s = 3600\.002 s, more than the [\d.]+ s the plugin ran$/,
  },
  env: {
    script: 'from common import *\nfinish(sources())\nput_json("env.json", {"interpreter": "x"})\n',
    reason: /^contract\/out\/env\.json: versions: /,
  },
  metric: {
    script:
      'from common import *\nwith open(os.path.join(out, "metrics.jsonl"), "a") as f:\n    f.write(json.dumps({"step": 0, "loss": float("nan")}) + "\\n")\nimport time\ntime.sleep(30)\n',
    reason: /^contract\/out\/metrics\.jsonl line 1: NaN$/,
    kind: 'nonfinite',
  },
  unstartable: { script: '', reason: /^plugin could not start: .*ENOENT/, command: () => ['sdd-no-such-program'] },
  // A wrapper whose child hangs: the whole process group goes (the child would hold the pipes open).
  wrapped: {
    script: '',
    reason: /^plugin showed no progress for 1 s \(hang_timeout_s\): killed$/,
    hang_timeout_s: 1,
    command: (dir) => ['sh', '-c', `${PYTHON} ${join(dir, 'hang.py')}; echo after`],
  },
};

const scripts = (cases: Record<string, Hostile>) => ({
  'common.py': COMMON,
  ...Object.fromEntries(Object.entries(cases).map(([k, h]) => [`${k}.py`, h.script])),
});
const PARAMS = { prompt: 'hair_color:black->white', eval_images: 2, sources: 'real' };

/** Writes the hostile experiment (one run per plugin of `cases`) into `dir`; returns its path. */
function hostileExperiment(dir: string, cases: Record<string, Hostile>): string {
  writeFiles(dir, scripts(cases));
  const commands = Object.keys(cases).map((k) => [PYTHON, join(dir, `${k}.py`)]);
  const method = JSON.stringify({ name: 'external', params: { ...PARAMS, command: ['x'] } });
  writeFiles(dir, {
    'hostile.yaml': `name: hostile\nworld: toyfaces\nmethod: ${method}\nsweep: {method.params.command: ${JSON.stringify(commands)}}\nprofiles: {quick: {}}\n`,
  });
  return join(dir, 'hostile.yaml');
}

type Metrics = Record<string, unknown>;

/** The example and SDEdit finished: the same metrics, prompt and world models; the curve forwarded; arrays pruned. */
function checkExample(store: string, ext: Metrics, ref: Metrics, dir: string): void {
  assert.equal(ext.prompt, ref.prompt);
  for (const k of [
    'fid',
    'kid',
    'clip_directional',
    'clip_score',
    'hit_rate',
    'preservation_rate',
    'identity',
    'tau_train_s',
    'tau_infer_s',
  ]) {
    assert.equal(typeof ext[k], typeof ref[k], k);
    if (typeof ref[k] === 'number') assert.ok(Number.isFinite(ext[k]), `${k} = ${String(ext[k])}`);
  }
  assert.deepEqual(ext.models, ref.models, 'measured with the same world models');
  assert.ok((ext.fid as number) > 0, 'the plugin changed the images');
  assert.deepEqual(Object.keys(ext.plugin_env as Metrics).sort(), [
    'device',
    'interpreter',
    'precision',
    'threads',
    'versions',
  ]);
  const plugin = ext.plugin as { peak_memory_bytes: number; argv: string[] };
  assert.ok(plugin.peak_memory_bytes > 0);
  assert.equal(plugin.argv[0], PYTHON, '$SDD_PYTHON as it ran');
  const curve = readFileSync(join(dir, 'metrics.jsonl'), 'utf-8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number });
  assert.deepEqual(
    curve.map((c) => c.step),
    [0, 1],
    'the training curve forwarded (128 images in batches of 64)',
  );
  assert.ok(existsSync(join(dir, 'artifacts', 'edits.png')) && existsSync(join(dir, 'contract', 'out', 'timing.json')));
  assert.deepEqual(
    readdirSync(join(dir, 'contract', 'in')),
    ['manifest.json'],
    `the arrays pruned after the run (${store})`,
  );
}

test(
  'sdd run: the example plugin beside SDEdit on the same prompt (FID, CLIP, …); hostile plugins fail with one-line error.json, exit 1, no result.json',
  { skip: noPython },
  async () => {
    const store = tmp();
    const files = [
      'experiments/examples/external.yaml',
      'experiments/base/sdedit.yaml',
      hostileExperiment(tmp(), HOSTILE_RUNS),
    ];
    const r = await sdd(
      ['run', ...files, '--profile', 'quick', '--set', 'method.params.eval_images=4', '--store', store, '--jobs', '2'],
      { env: { SDD_CACHE: tmp() } },
    );
    assert.equal(r.exitCode, 1, r.all.slice(-3000));
    const results = new Map<string, Metrics>();
    const failed: string[] = [];
    for (const id of readdirSync(store).filter((d) => existsSync(join(store, d, 'config.json')))) {
      const config = JSON.parse(readFileSync(join(store, id, 'config.json'), 'utf-8')) as {
        experiment: string;
        method: { name: string; params: { command?: string[] } };
      };
      if (config.experiment !== 'hostile') {
        results.set(config.method.name, {
          ...(JSON.parse(readFileSync(join(store, id, 'result.json'), 'utf-8')) as { metrics: Metrics }).metrics,
          dir: join(store, id),
        });
        continue;
      }
      const name = config.method.params.command![1].replace(/^.*\/|\.py$/g, '');
      assert.ok(!existsSync(join(store, id, 'result.json')), `${name}: no result.json`);
      const error = JSON.parse(readFileSync(join(store, id, 'error.json'), 'utf-8')) as {
        kind: string;
        message: string;
        bad_input: boolean;
      };
      assert.match(error.message, HOSTILE_RUNS[name].reason, name);
      assert.deepEqual([error.kind, error.bad_input], ['error', false], name);
      failed.push(name);
    }
    assert.deepEqual(failed.sort(), Object.keys(HOSTILE_RUNS).sort());
    const [ext, ref] = [results.get('external')!, results.get('sdedit')!];
    checkExample(store, ext, ref, ext.dir as string);
  },
);

test(
  'hostile plugins, each reason: hang (also under a wrapper), NaN images, garbage, wrong count or dtype, a link, missing output, timing, env, NaN metric, no program',
  { skip: noPython },
  async () => {
    await initBackend(backendFromEnv());
    const dir = tmp();
    writeFiles(dir, scripts(HOSTILE_CALLS));
    // All at once: each is its own run folder and process (the hang and the killed ones overlap).
    await Promise.all(
      Object.entries(HOSTILE_CALLS).map(async ([name, h]) => {
        const runDir = tmp();
        const command = h.command?.(dir) ?? [PYTHON, join(dir, `${name}.py`)];
        const params = externalParams.parse({ ...PARAMS, command, hang_timeout_s: h.hang_timeout_s ?? 30 });
        const ctx = makeContext({
          runId: name,
          runDir,
          seed: 0,
          world: 'toyfaces',
          params,
          signal: new AbortController().signal,
          progress: () => {},
        });
        const t0 = Date.now();
        const e = await external.run(ctx).then(
          () => null,
          (err: unknown) => err as Error,
        );
        assert.ok(e, `${name}: the run fails`);
        assert.match(e.message, h.reason, name);
        assert.equal(e instanceof NonFiniteError, h.kind === 'nonfinite', `${name}: ${e.constructor.name}`);
        assert.ok(!existsSync(join(runDir, 'artifacts', 'items.json')), `${name}: nothing evaluated`);
        if (['metric', 'hang', 'wrapped'].includes(name))
          assert.ok(Date.now() - t0 < 10_000, `${name}: killed, not waited for`);
      }),
    );
  },
);

const EXAMPLE = join(PROJECT_ROOT, 'examples', 'plugins', 'blend', 'plugin.py');

/** The example's metric lines so far (the plugin's own file, read often: the abort lands mid-training). */
const lines = (path: string) => (existsSync(path) ? readFileSync(path, 'utf-8').split('\n').filter(Boolean).length : 0);

test(
  'interrupted, the plugin is killed; run again, it resumes from its checkpoint and the curve has every step once',
  { skip: noPython },
  async () => {
    await initBackend(backendFromEnv());
    const runDir = tmp();
    const settings = { alpha: 0.2, tint: 0.25, sigma: 0, batch: 2, train_batch: 1, checkpoint_every: 5 };
    const params = externalParams.parse({ ...PARAMS, command: [PYTHON, EXAMPLE], train_images: 60, settings });
    const context = (signal: AbortSignal) =>
      makeContext({ runId: 'resume', runDir, seed: 0, world: 'toyfaces', params, signal, progress: () => {} });
    const abort = new AbortController();
    const own = join(runDir, 'contract', 'out', 'metrics.jsonl');
    const watch = setInterval(() => lines(own) >= 12 && abort.abort(), 5);
    const first = await external.run(context(abort.signal)).then(
      () => null,
      (e: unknown) => e as Error,
    );
    clearInterval(watch);
    assert.ok(first && abort.signal.aborted, `interrupted (${first?.message ?? 'it finished first'})`);
    const progress = join(runDir, 'contract', 'out', 'progress.json');
    const mtime = existsSync(progress) ? readFileSync(progress, 'utf-8') : '';
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(
      existsSync(progress) ? readFileSync(progress, 'utf-8') : '',
      mtime,
      'the plugin is gone: no progress after the abort',
    );
    const result = await external.run(context(new AbortController().signal));
    assert.ok(Number.isFinite(result.fid as number));
    const log = readFileSync(join(runDir, 'log.txt'), 'utf-8');
    const from = Number(/resuming from step (\d+)/.exec(log)?.[1]);
    assert.ok(from > 0 && from % 5 === 0, `resumed from a checkpoint (step ${from})`);
    const steps = readFileSync(join(runDir, 'metrics.jsonl'), 'utf-8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { step: number }).step);
    assert.deepEqual(
      steps,
      Array.from({ length: 60 }, (_, i) => i),
      "the run's curve: every step once",
    );
  },
);

test(
  'a world of codes: the plugin gets W+ codes and no images, and must return the originals it generates',
  { skip: noPython },
  async () => {
    await initBackend(backendFromEnv());
    const dir = tmp();
    // Checked in the plugin: what the manifest gives in a world of codes.
    const generate =
      'codes = np.load(os.path.join(root, "in", manifest["inputs"]["source_codes"]["file"]))\nassert manifest["inputs"]["sources"] is None and manifest["world"]["from_codes"]\nassert list(codes.shape) == [3, manifest["world"]["wplus"]["levels"], manifest["world"]["wplus"]["dim"]]\ns = manifest["world"]["image_size"]\nx = np.full((3, s, s, 3), 0.5, np.float32)\n';
    writeFiles(dir, {
      'common.py': COMMON,
      'nogen.py': `from common import *\n${generate}finish(x)\n`,
      'badgen.py': `from common import *\n${generate}finish(x)\nx[2] = np.inf\nput("originals.npy", lambda f: np.save(f, x))\n`,
    });
    const world = loadWorld('paper-random-tiny');
    const run = (script: string) => {
      const params = externalParams.parse({
        command: [PYTHON, join(dir, script)],
        prompt: world.prompts[0].id,
        eval_images: 3,
      });
      return external.run(
        makeContext({
          runId: script,
          runDir: tmp(),
          seed: 0,
          world: 'paper-random-tiny',
          params,
          signal: new AbortController().signal,
          progress: () => {},
        }),
      );
    };
    // Evaluating them is editResult's usual path (the example's test covers it): here, that they are
    // required and checked.
    await assert.rejects(run('nogen.py'), { message: 'contract/out/originals.npy: missing' });
    await assert.rejects(run('badgen.py'), {
      message: `contract/out/originals.npy: ${32 * 32 * 3} non-finite values (the first in image 2)`,
    });
  },
);
