/** The backend facts: readable without tfjs, and what the planner, optimiser and executor read. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { BACKEND_CHOICES, BACKENDS, backendByTfName, backendDef, namedGpu, parseBackendChoice } from './choices.js';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

/** Whether importing `module` (relative to the root) in a fresh process creates tfjs's engine. */
function loadsTfjs(module: string): boolean {
  const code = `await import(${JSON.stringify(join(ROOT, module))}); console.log(globalThis._tfengine === undefined ? 'no' : 'yes');`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    encoding: 'utf-8',
  });
  return out.trim() === 'yes';
}

test('the experiment schema and the backend facts load without tfjs; the backend itself does', () => {
  assert.equal(loadsTfjs('src/experiments/schema.ts'), false);
  assert.equal(loadsTfjs('src/backend/choices.ts'), false);
  // The probe can see tfjs: otherwise the two lines above could not fail.
  assert.equal(loadsTfjs('src/backend/index.ts'), true);
});

test('backend choices: auto first, then the registry in auto-selection order; names are unique', () => {
  assert.deepEqual(BACKEND_CHOICES, ['auto', 'node-gpu', 'webgpu', 'node', 'wasm', 'cpu']);
  assert.equal(new Set(BACKENDS.map((b) => b.name)).size, BACKENDS.length);
  assert.equal(parseBackendChoice(' wasm ', 'x'), 'wasm');
  assert.throws(() => parseBackendChoice('wsam', 'SDD_BACKEND'), /^Error: SDD_BACKEND: unknown backend 'wsam'/);
});

test('facts: GPU backends, the host optimiser, exact recomputation, bundle externals', () => {
  assert.deepEqual(
    BACKENDS.filter((b) => b.gpu).map((b) => b.name),
    ['node-gpu', 'webgpu'],
  );
  assert.equal(namedGpu('webgpu'), true);
  // auto never asks a cluster for a GPU: the login node cannot see the compute nodes' devices.
  assert.equal(namedGpu('auto'), false);
  assert.equal(backendByTfName('wasm')?.hostOptimizer, true);
  assert.equal(backendByTfName('tensorflow')?.hostOptimizer, false);
  assert.equal(backendDef('cpu').exact, true);
  assert.equal(backendDef('webgpu').exact, false);
  assert.deepEqual(backendDef('webgpu').bundleExternal, ['webgpu']);
});
