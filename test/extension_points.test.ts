/**
 * Every extension point is one file plus one line in its index (docs/extending.md). This test
 * takes a copy of the project's code, adds a dummy of each kind exactly that way (a method, a
 * world, a backend, an engine, an executor, a metric and a report section), and drives them through the real
 * CLI: validate, run, status, report. Nothing else in the copy changes, so passing means the
 * registries really collect what a new file declares.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { tmp } from './helpers.js';
import { PROJECT_ROOT } from '../src/util/env.js';

/** The files each dummy adds, and the one index line each appends. */
const DUMMY_FILES: Record<string, string> = {
  'baselines/dummy.ts': `
import { z } from 'zod';
import { loadWorld } from '../src/world/registry.js';
import type { Method } from '../src/methods/types.js';
import { dummySection } from './dummy_section.js';
export const dummy: Method<{ level: number }> = {
  name: 'dummy',
  version: 1,
  description: 'a dummy method (extension test)',
  params: z.strictObject({ level: z.number().default(1) }),
  reportSections: [dummySection],
  async run(ctx) {
    const world = loadWorld(ctx.world);
    ctx.metric(0, { loss: 1 });
    return { dummy_score: ctx.params.level + ctx.seed / 10, world_size: world.imageSize };
  },
};
`,
  'baselines/dummy_section.ts': `
import type { ReportSection } from '../src/methods/report.js';
export const dummySection: ReportSection = {
  id: 'dummy',
  order: 45,
  figures: (view) => [{
    id: 'dummy_scores',
    title: 'dummy scores',
    spec: {
      data: { values: view.runs.map((r) => ({ seed: r.seed, score: Number(r.values.dummy_score) })) },
      mark: 'point',
      encoding: { x: { field: 'seed', type: 'quantitative', title: 'seed' }, y: { field: 'score', type: 'quantitative', title: 'score' } },
    },
  }],
};
`,
  'src/methods/engines/dummy.ts': `
import type { EngineDef } from '../engine.js';
export const dummyEngine: EngineDef = {
  name: 'dummy',
  describe: 'a dummy engine (extension test): runs the method in process and marks its result',
  precisions: ['fp32'],
  supports: (method) => method.name === 'dummy',
  run: async (method, ctx) => ({ ...(await method.run(ctx)), dummy_engine: true }),
};
`,
  'datasets/dummy/world.ts': `
import type { World, WorldDef } from '../../src/world/types.js';
export const dummyWorld: WorldDef = {
  name: 'dummy',
  describe: 'a dummy world (extension test)',
  fingerprint: () => ({ dummy: 'v1' }),
  // Only what the dummy method reads: a world's full interface is the world's business.
  load: () => ({ name: 'dummy', imageSize: 7, prompts: [], fingerprint: { dummy: 'v1' } }) as unknown as World,
};
`,
  'src/backend/backends/dummy.ts': `
import { started, type BackendDef } from './types.js';
export const dummyBackend: BackendDef<'dummy'> = {
  name: 'dummy', autoRank: 99, tfName: 'cpu', gpu: false, hostOptimizer: true, exact: true,
  replacedKernels: false, bundleExternal: [],
  async activate({ tf }) {
    await import('@tensorflow/tfjs-backend-cpu');
    return started(await tf.setBackend('cpu'), 'cpu failed');
  },
};
`,
  'src/exec/dummy.ts': `
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { registerExecutor } from './executors.js';
registerExecutor({
  name: 'dummy',
  describe: 'a dummy executor (extension test): the local one, noting its settings',
  settings: {
    key: 'dummy', describe: 'dummy settings',
    schema: () => z.strictObject({ note: z.string().optional() }),
    flags: { 'dummy-note': { setting: 'note', type: 'string', describe: 'dummy: a note' } },
  },
  async execute(runs, opts) {
    const note = [String(opts.settings?.note), ...runs.map((r) => String(r.settings.dummy?.note))];
    mkdirSync(opts.store.root, { recursive: true });
    writeFileSync(join(opts.store.root, 'dummy-executor.txt'), note.join(' '));
    return (await import('./local_run.js')).executeRuns(runs, opts);
  },
  async queueStates(dirs) {
    return dirs.map((d, i) => ({ task: 'd' + i, phase: 'ended' as const, detail: 'dummy queue saw ' + d.split('/').pop() }));
  },
});
`,
};

const INDEX_LINES: Record<string, string> = {
  'baselines/index.ts': `export { dummy } from './dummy.js';`,
  'src/methods/engines/index.ts': `export { dummyEngine } from './dummy.js';`,
  'datasets/index.ts': `export { dummyWorld } from './dummy/world.js';`,
  'src/backend/backends/index.ts': `export { dummyBackend } from './dummy.js';`,
  'src/exec/index.ts': `import './dummy.js';`,
};

/** The metric's one entry, added to the metric table's list. */
const METRIC_ENTRY = `  { key: 'dummy_score', name: 'dummy score', unit: 'pt', better: 'higher', range: [0, 100], interval: seeds },`;

const EXPERIMENT = `name: dummy-ext
world: dummy
backend: dummy
engine: dummy
executor: dummy
dummy: {note: from-file}
method: {name: dummy, params: {level: 2}}
seeds: [0, 1]
`;

/** A copy of the project's code (not the zoo's weights: the dummies need none), node_modules linked in. */
function copyProject(dir: string): void {
  for (const d of ['src', 'baselines', 'bin', 'datasets']) {
    cpSync(join(PROJECT_ROOT, d), join(dir, d), {
      recursive: true,
      filter: (src) => !src.endsWith('.safetensors') && !src.endsWith('.test.ts'),
    });
  }
  for (const f of ['package.json', 'tsconfig.json']) cpSync(join(PROJECT_ROOT, f), join(dir, f));
  symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(dir, 'node_modules'));
}

function addDummies(dir: string): void {
  for (const [f, text] of Object.entries(DUMMY_FILES)) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    writeFileSync(join(dir, f), text.trimStart());
  }
  for (const [f, line] of Object.entries(INDEX_LINES)) appendFileSync(join(dir, f), `${line}\n`);
  const reg = join(dir, 'src', 'metrics', 'registry.ts');
  const text = readFileSync(reg, 'utf-8');
  const at = text.indexOf('const METRIC_TABLE: MetricSpec[] = [\n');
  assert.ok(at >= 0, 'the metric table moved: update this test and docs/extending.md');
  const end = text.indexOf('\n', at) + 1;
  writeFileSync(reg, text.slice(0, end) + METRIC_ENTRY + '\n' + text.slice(end));
}

test('a dummy method, world, backend, engine, executor, metric and report section: one file plus one index line each', async () => {
  const dir = tmp('sdd-ext-');
  try {
    copyProject(dir);
    addDummies(dir);
    writeFileSync(join(dir, 'dummy.yaml'), EXPERIMENT);
    const store = join(dir, 'store');
    const sdd = (args: string[]) =>
      execa(process.execPath, [join(dir, 'bin', 'sdd.mjs'), ...args], {
        cwd: dir,
        reject: false,
        env: { SDD_RUNS: store, SDD_REPORTS: join(dir, 'reports') },
      });

    const v = await sdd(['validate', 'dummy.yaml']);
    assert.equal(v.exitCode, 0, v.stderr);
    const bad = await sdd(['run', 'dummy.yaml', '--dummy-note', '7', '--partition', 'x']);
    assert.match(bad.stderr, /--partition: only with --executor slurm/, "another executor's flag is refused");

    const r = await sdd(['run', 'dummy.yaml', '--dummy-note', 'from-flag', '--no-report']);
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.equal(
      readFileSync(join(store, 'dummy-executor.txt'), 'utf-8'),
      'from-flag from-file from-file',
      'the executor got its flag and block',
    );
    const runs = readdirSync(store).filter((d) => existsSync(join(store, d, 'result.json')));
    assert.equal(runs.length, 2);
    const env = JSON.parse(readFileSync(join(store, runs[0], 'env.json'), 'utf-8')) as { backend: { choice: string } };
    assert.equal(env.backend.choice, 'dummy', 'the run used the dummy backend');
    const result = JSON.parse(readFileSync(join(store, runs[0], 'result.json'), 'utf-8')) as {
      metrics: Record<string, unknown>;
    };
    assert.equal(result.metrics.world_size, 7, 'the method loaded the dummy world');
    assert.equal(result.metrics.dummy_engine, true, 'the dummy engine computed it');
    const config = JSON.parse(readFileSync(join(store, runs[0], 'config.json'), 'utf-8')) as { engine?: unknown };
    assert.deepEqual(config.engine, { name: 'dummy', precision: 'fp32' }, 'the engine is in the run identity');

    const s = await sdd(['status', 'dummy.yaml', '--json']);
    const statuses = JSON.parse(s.stdout) as Array<{ state: string; task: string | null }>;
    assert.deepEqual(
      statuses.map((x) => [x.state, x.task]).sort(),
      [
        ['finished', 'd0'],
        ['finished', 'd1'],
      ],
      'the status hook ran',
    );

    const rep = await sdd(['report', 'dummy.yaml']);
    assert.equal(rep.exitCode, 0, rep.stdout + rep.stderr);
    const page = readFileSync(join(dir, 'reports', 'dummy-ext', 'index.html'), 'utf-8');
    assert.match(page, /dummy score/, 'the metric is a column');
    assert.match(page, /dummy scores/, 'the report section drew its chart');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
