/**
 * A GPU lost under a run (driver reset, Xid) fails that run with error.json kind 'device' and a
 * clear reason, at once, and the next `sdd run` resumes it from its checkpoint. On lavapipe, with
 * the loss injected right after the run's first checkpoint (SDD_TEST_LOSE_DEVICE_AFTER_CHECKPOINT).
 * Skipped, with the reason, where no WebGPU adapter exists at all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { sdd, tmp, writeFiles } from './helpers.js';

const probe = await sdd(['doctor', '--backend', 'webgpu']);
const noAdapter = probe.exitCode === 0 ? null : probe.stderr.trim().split('\n').pop()!;

test(
  'a lost device fails the run (kind device, reason named) and the rerun resumes from the checkpoint',
  { skip: noAdapter ?? false },
  async () => {
    const d = tmp();
    const store = join(d, 'runs');
    writeFiles(d, {
      'e.yaml':
        'name: lost\nmethod: {name: toy_fit, params: {steps: 60, hidden: 8, checkpoint_every: 20}}\nseeds: [0]\n',
    });
    const first = await sdd(['run', join(d, 'e.yaml'), '--store', store, '--backend', 'webgpu'], {
      env: { SDD_TEST_LOSE_DEVICE_AFTER_CHECKPOINT: '1' },
    });
    assert.equal(first.exitCode, 1, first.all);
    const [run] = readdirSync(store)
      .filter((f) => !f.startsWith('.'))
      .map((f) => join(store, f));
    const err = JSON.parse(readFileSync(join(run, 'error.json'), 'utf-8')) as { kind: string; message: string };
    assert.equal(err.kind, 'device', err.message);
    assert.match(err.message, /GPU device lost/);
    assert.ok(existsSync(join(run, 'checkpoint.json')), 'the checkpoint survives the failure');
    assert.ok(!existsSync(join(run, 'result.json')));

    const again = await sdd(['run', join(d, 'e.yaml'), '--store', store, '--backend', 'webgpu']);
    assert.equal(again.exitCode, 0, again.all);
    assert.ok(existsSync(join(run, 'result.json')));
    assert.ok(!existsSync(join(run, 'error.json')), 'a finished rerun clears the error');
    assert.match(readFileSync(join(run, 'log.txt'), 'utf-8'), /resumed from checkpoint at step 20/);
    const env = JSON.parse(readFileSync(join(run, 'env.json'), 'utf-8')) as {
      backend: { choice: string; adapter: { vendor: string } | null };
    };
    assert.equal(env.backend.choice, 'webgpu');
    assert.ok(env.backend.adapter?.vendor, 'env.json records the adapter');
  },
);
