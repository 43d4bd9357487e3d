/** The worker pool: each worker owns a wasm backend and computes the same numbers as this thread. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './index.js';
import { WorkerPool } from './pool.js';
import { convForward, type ConvForwardInput } from './worker_tasks.js';

await initBackend('wasm');

async function input(seed: number, n: number): Promise<ConvForwardInput> {
  const shapes: Array<[number, number, number, number]> = [
    [3, 3, 3, 8],
    [3, 3, 8, 16],
  ];
  const images = tf.randomUniform([n, 16, 16, 3], 0, 1, 'float32', seed);
  const filters = shapes.map((s, i) => tf.randomNormal(s, 0, 0.3, 'float32', seed + i + 1));
  try {
    return {
      images: (await images.data()) as Float32Array,
      shape: [n, 16, 16, 3],
      filters: await Promise.all(
        filters.map(async (f, i) => ({ values: (await f.data()) as Float32Array, shape: shapes[i] })),
      ),
    };
  } finally {
    tf.dispose([images, ...filters]);
  }
}

/** A task module as a data: URL (absolute imports only): registers task `name`, or throws on load. */
function taskModule(body: string): string {
  const registry = new URL('./task_registry.ts', import.meta.url).href;
  return `data:text/javascript,${encodeURIComponent(`import { registerWorkerTask } from '${registry}';\n${body}`)}`;
}

/** Runs a task that is not in WorkerTasks (registered by a test module only). */
function runUntyped(pool: WorkerPool, name: string, input: unknown): Promise<unknown> {
  return (pool.run as (n: string, i: unknown) => Promise<unknown>).call(pool, name, input);
}

test('two workers, each on wasm, match the main thread exactly', async () => {
  const pool = new WorkerPool(2, 'wasm');
  try {
    const infos = await Promise.all(Array.from({ length: 4 }, () => pool.run('backendInfo', {})));
    for (const i of infos) assert.equal(i.backend, 'wasm');
    const inputs = await Promise.all([input(1, 6), input(2, 5), input(3, 7)]);
    const remote = await Promise.all(inputs.map((x) => pool.run('convForward', x)));
    for (const [k, x] of inputs.entries()) {
      const local = await convForward(x);
      assert.deepEqual(remote[k].shape, local.shape);
      // Same wasm build, same inputs, same op order: bitwise equal.
      assert.deepEqual([...remote[k].features], [...local.features]);
    }
  } finally {
    await pool.close();
  }
});

test('a failing task rejects with its message and the pool keeps working', async () => {
  const pool = new WorkerPool(1, 'wasm');
  try {
    const bad = { ...(await input(4, 2)), shape: [2, 16, 16, 4] as [number, number, number, number] };
    await assert.rejects(pool.run('convForward', bad), /shape|values/i);
    const ok = await pool.run('convForward', await input(5, 2));
    assert.deepEqual(ok.shape, [2, 16]);
  } finally {
    await pool.close();
  }
});

test('the workers import the task modules at start-up and run the tasks they register (sync or async)', async () => {
  const a = taskModule(`registerWorkerTask('testDouble', (x) => x * 2);`);
  const b = taskModule(`registerWorkerTask('testConcat', async ({ s, n }) => s.repeat(n));`);
  const pool = new WorkerPool(2, 'wasm', [a, b]);
  try {
    assert.deepEqual(pool.taskModules, [a, b]);
    const got = await Promise.all([
      runUntyped(pool, 'testDouble', 21),
      runUntyped(pool, 'testConcat', { s: 'ab', n: 3 }),
      runUntyped(pool, 'testDouble', 4),
    ]);
    assert.deepEqual(got, [42, 'ababab', 8]);
    // The backend's own tasks still run next to them; a name nobody registered says what to do.
    assert.equal((await pool.run('backendInfo', {})).backend, 'wasm');
    await assert.rejects(
      runUntyped(pool, 'noSuchTask', {}),
      /unknown worker task 'noSuchTask'.*testConcat.*taskModules/s,
    );
  } finally {
    await pool.close();
  }
});

test('a task module that fails to load (here: a name registered twice) fails every task with its URL', async () => {
  const twice = taskModule(`registerWorkerTask('convForward', () => 0);`);
  const pool = new WorkerPool(1, 'wasm', [twice]);
  try {
    for (let i = 0; i < 2; i++) {
      await assert.rejects(
        pool.run('backendInfo', {}),
        (e: Error) =>
          e.message.includes(`${twice} failed to load`) && e.message.includes(`'convForward' is registered twice`),
      );
    }
  } finally {
    await pool.close();
  }
});
