/**
 * The layering rules (.dependency-cruiser.cjs, `make layers`) really reject wrong imports: the
 * real config runs over a small fixture tree in a temp dir that holds one import of each kind it
 * must refuse, next to imports it must allow. `make layers` only shows that the repository passes;
 * this shows that passing means something (a regex typo or a rule matching nothing would pass too).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { tmp, writeFiles } from './helpers.js';
import { PROJECT_ROOT } from '../src/util/env.js';

const CONFIG = join(PROJECT_ROOT, '.dependency-cruiser.cjs');
const DEPCRUISE = join(PROJECT_ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

const FILES: Record<string, string> = {
  'tsconfig.json': JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      noEmit: true,
      allowImportingTsExtensions: true,
    },
    include: ['src', 'datasets', 'baselines', 'bin'],
  }),
  // Modules that are imported (their own imports are all allowed).
  'src/util/u.ts': `export const u = 1;\n`,
  'src/errors.ts': `export class E extends Error {}\n`,
  'src/util/env.ts': `export const PROJECT_ROOT = '/';\nexport type X = string;\n`,
  'src/util/progress.ts': `export const bar = 1;\n`,
  'src/runs/env.ts': `import type { B } from '../backend/b.js';\nimport { PROJECT_ROOT } from '../util/env.js';\nexport const runEnv = (b: B) => [b, PROJECT_ROOT];\n`,
  'src/exec/executor.ts': `import { u } from '../util/u.js';\nexport const e = u;\n`,
  'src/backend/b.ts': `import { u } from '../util/u.js';\nimport { E } from '../errors.js';\nexport type B = number;\nexport const b = [u, E];\n`,
  'src/methods/types.ts': `export class NonFinite extends Error {}\n`,
  'baselines/bl.ts': `import { NonFinite } from '../src/methods/types.js';\nexport const bl = NonFinite;\n`,
  'datasets/w/m.ts': `export const world = 1;\n`,
  'datasets/toyfaces/models/newnet.ts': `export const newLoss = 1;\n`,

  // Allowed: the registries, the cli, a world building on lower layers and the leaf files placed low, tests.
  'src/world/registry.ts': `import { world } from '../../datasets/w/m.js';\nexport const worlds = [world];\n`,
  'src/methods/index.ts': `import { bl } from '../../baselines/bl.js';\nexport const methods = [bl];\n`,
  'src/cli/c.ts': `import { world } from '../../datasets/w/m.js';\nimport { e } from '../exec/executor.js';\nexport const c = [world, e];\n`,
  'bin/entry.mjs': `await import('../src/cli/c.ts');\n`,
  'datasets/w/zoo.ts':
    `import { bar } from '../../src/util/progress.js';\nimport { PROJECT_ROOT } from '../../src/util/env.js';\nimport { t } from '../../src/train/t.js';\n` +
    `export const zoo = [bar, PROJECT_ROOT, t];\n`,
  'src/train/t.ts': `import { b } from '../backend/b.js';\nexport const t = b;\n`,
  'src/sdd/s.test.ts': `import { NonFinite } from '../methods/types.js';\nimport { world } from '../../datasets/w/m.js';\nvoid [NonFinite, world];\n`,

  // Refused.
  'src/backend/worker_tasks.ts': `import { t } from '../train/t.js';\nimport type { X } from '../util/env.js';\nexport const tasks = [t];\nexport type Y = X;\n`,
  'src/backend/typed.ts': `import type { world } from '../../datasets/w/m.js';\nexport type W = typeof world;\n`,
  'src/nn/models.ts': `import { newLoss } from '../../datasets/toyfaces/models/newnet.js';\nexport const models = [newLoss];\n`,
  'src/sdd/distill.ts': `import { NonFinite } from '../methods/types.js';\nexport const d = NonFinite;\n`,
  'src/util/bad.ts': `import { runEnv } from '../runs/env.js';\nexport const r = runEnv;\n`,
  // A cycle inside one layer: no layer rule sees it, no-circular does (both edges).
  'src/nn/cyc_a.ts': `import { b } from './cyc_b.js';\nexport const a = () => b;\n`,
  'src/nn/cyc_b.ts': `import { a } from './cyc_a.js';\nexport const b = () => a;\n`,
  'src/metrics/features.ts': `import { world } from '../../datasets/w/m.js';\nexport const f = world;\n`,
  'src/exec/child.ts': `import { bl } from '../../baselines/bl.js';\nexport const ch = bl;\n`,
  'src/newdir/n.ts': `import { u } from '../util/u.js';\nexport const n = u;\n`,
  'datasets/w/upward.ts': `import { e } from '../../src/exec/executor.js';\nexport const up = e;\n`,
  'src/train/lazy.ts': `export async function lazy() {\n  return import('../sdd/distill.js');\n}\n`,
};

interface CruiseResult {
  modules: Array<{ source: string; dependencies: Array<{ module: string; couldNotResolve: boolean }> }>;
}

/** depcruise over the fixture tree with the real config: its exit status and stdout. */
function depcruise(cwd: string, extra: string[] = []): { status: number; stdout: string } {
  try {
    const stdout = execFileSync(
      process.execPath,
      [DEPCRUISE, 'src', 'baselines', 'datasets', 'bin', '--config', CONFIG, ...extra],
      { cwd, encoding: 'utf-8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    return { status: 0, stdout };
  } catch (e) {
    const err = e as { status?: number | null; stdout?: string };
    if (typeof err.status !== 'number') throw e;
    return { status: err.status, stdout: err.stdout ?? '' };
  }
}

test('the layering config refuses each kind of wrong import and allows the registries', () => {
  const dir = tmp('sdd-layers-');
  try {
    writeFiles(dir, FILES);
    // As `make layers` runs it: a non-zero exit, one line per violation.
    const { status, stdout } = depcruise(dir);
    const got = [...stdout.matchAll(/^\s*error (\S+): (\S+) → (\S+)$/gm)]
      .map((m) => `${m[1]}: ${m[2]} → ${m[3]}`)
      .sort();
    assert.notEqual(status, 0, stdout);
    // Every local import resolved (.js → .ts through the tsconfig), or a rule could silently miss it.
    const result = JSON.parse(depcruise(dir, ['--output-type', 'json']).stdout) as CruiseResult;
    for (const m of result.modules) {
      for (const d of m.dependencies) assert.ok(!d.couldNotResolve, `${m.source}: could not resolve ${d.module}`);
    }

    const expected = [
      // backend → train, and the type-only import of a world: both the layer rule and the backend's own rule.
      'layer-backend-imports-higher: src/backend/worker_tasks.ts → src/train/t.ts',
      'backend-imports-world-or-train: src/backend/worker_tasks.ts → src/train/t.ts',
      'layer-backend-imports-higher: src/backend/typed.ts → datasets/w/m.ts',
      'backend-imports-world-or-train: src/backend/typed.ts → datasets/w/m.ts',
      'src-imports-world: src/backend/typed.ts → datasets/w/m.ts',
      // nn importing a world's model: the model registry exists so that it never has to.
      'layer-nn-imports-higher: src/nn/models.ts → datasets/toyfaces/models/newnet.ts',
      'src-imports-world: src/nn/models.ts → datasets/toyfaces/models/newnet.ts',
      'layer-sdd-imports-higher: src/sdd/distill.ts → src/methods/types.ts',
      // runs/env.ts (env.json) is exec level: util may not import it.
      'layer-util-imports-higher: src/util/bad.ts → src/runs/env.ts',
      // Same layer (metrics and worlds) but a world only through the registry.
      'src-imports-world: src/metrics/features.ts → datasets/w/m.ts',
      'src-imports-baseline: src/exec/child.ts → baselines/bl.ts',
      'layer-unmapped-module: src/newdir/n.ts → src/util/u.ts',
      'layer-world-imports-higher: datasets/w/upward.ts → src/exec/executor.ts',
      // Dynamic imports count.
      'layer-train-imports-higher: src/train/lazy.ts → src/sdd/distill.ts',
    ].sort();
    assert.deepEqual(got, expected, stdout);
    // A cycle is printed over several lines, the whole loop: a → b → a.
    assert.match(stdout, /error no-circular: src\/nn\/cyc_a\.ts →\s+src\/nn\/cyc_b\.ts →\s+src\/nn\/cyc_a\.ts/, stdout);
    assert.doesNotMatch(stdout, /known violations ignored/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
