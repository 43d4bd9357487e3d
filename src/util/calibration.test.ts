/**
 * The τ protocol (#30), not the timings: calibrations of concurrent processes never overlap (the
 * device lock is held across the k timed units), untimed units wait while another process
 * calibrates, the record says k, warm-up, the lock wait and that the lock was held, a dead
 * holder's lock is taken over, and a bounded wait gives up saying so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Calibration, median, type TimingRecord } from './calibration.js';

const locks = mkdtempSync(join(tmpdir(), 'sdd-device-locks-'));
process.env.SDD_DEVICE_LOCKS = locks;
const here = fileURLToPath(new URL('.', import.meta.url));

/**
 * A child process calibrating `units` busy units of `ms` each; it writes its record and the
 * interval it held the lock in.
 */
const CHILD = `
const { Calibration } = await import(process.env.CAL_MODULE);
const [units, ms, k, warmup] = JSON.parse(process.env.CAL_ARGS);
const busy = () => { const t = performance.now(); while (performance.now() - t < ms); };
const now = () => performance.timeOrigin + performance.now();
const cal = new Calibration('test-device', 'iteration', units, { k, warmup });
// Start together (process start-up times differ by more than a calibration lasts).
await new Promise((r) => setTimeout(r, Math.max(0, Number(process.env.CAL_START_AT ?? 0) - Date.now())));
let enter = null, exit = null;
for (let i = 0; i < units; i++) {
  await cal.begin();
  const timed = i >= warmup && i < warmup + k;
  if (timed && enter === null) enter = now();
  busy();
  if (i === warmup + k - 1) exit = now(); // still inside the lock: the next end() releases it
  await cal.end();
}
process.stdout.write(JSON.stringify({ enter, exit, record: cal.record() }));
`;

interface ChildOut {
  enter: number;
  exit: number;
  record: TimingRecord;
}

function child(args: [number, number, number, number], env: Record<string, string> = {}): Promise<ChildOut> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], {
      env: { ...process.env, ...env, CAL_MODULE: join(here, 'calibration.ts'), CAL_ARGS: JSON.stringify(args) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out) as ChildOut) : reject(new Error(`child exit ${code}: ${err}`)),
    );
  });
}

test('two concurrent calibrations do not overlap; each records k, warm-up and that it held the lock', async () => {
  // 2 warm-up + 4 timed + 4 untimed units of 60 ms each, in two processes started together.
  const start = { CAL_START_AT: String(Date.now() + 4000) };
  const [a, b] = await Promise.all([child([10, 60, 4, 2], start), child([10, 60, 4, 2], start)]);
  const [first, second] = a.enter < b.enter ? [a, b] : [b, a];
  assert.ok(
    first.exit < second.enter,
    `locked regions overlap: [${first.enter}, ${first.exit}] and [${second.enter}, ${second.exit}]`,
  );
  for (const r of [a.record, b.record]) {
    assert.equal(r.k, 4);
    assert.equal(r.warmup, 2);
    assert.equal(r.units, 10);
    assert.equal(r.lock_held, true);
    assert.equal(r.protocol, 'median-under-device-lock');
    assert.equal(r.lock_dir, locks);
    assert.ok(r.median_s >= 0.05, `median ${r.median_s} s for 60 ms units`);
  }
  // Whoever came second either waited for the lock or paused its untimed units meanwhile.
  assert.ok(second.record.lock_wait_s + second.record.yield_s > 0.05, JSON.stringify(second.record));
});

test('a lock left by a dead process is taken over; a live holder past the bounded wait is recorded as not held', async () => {
  // A dead owner (no such pid): taken over at once.
  mkdirSync(join(locks, 'test-device.lock'), { recursive: true });
  writeFileSync(join(locks, 'test-device.lock', 'owner.json'), JSON.stringify({ pid: 2 ** 22 + 12345, since: 'then' }));
  const cal = new Calibration('test-device', 'iteration', 2, { k: 1, warmup: 0 });
  await cal.begin();
  await cal.end();
  assert.equal(cal.record().lock_held, true);
  assert.ok(cal.record().lock_wait_s < 1);
  // A live holder (a child calibrating 12 × 100 ms) and a wait bounded at 0.2 s: timed without the lock, saying so.
  const holder = child([12, 100, 12, 0]);
  for (let i = 0; i < 200 && !existsLock(); i++) await new Promise((r) => setTimeout(r, 20));
  process.env.SDD_DEVICE_LOCK_WAIT_S = '0.2';
  try {
    const late = new Calibration('test-device', 'iteration', 1, { k: 1, warmup: 0 });
    await late.begin();
    await late.end();
    const r = late.record();
    assert.equal(r.lock_held, false);
    assert.ok(r.lock_wait_s >= 0.2 && r.lock_wait_s < 2, `waited ${r.lock_wait_s} s`);
  } finally {
    delete process.env.SDD_DEVICE_LOCK_WAIT_S;
  }
  assert.equal((await holder).record.lock_held, true);
});

function existsLock(): boolean {
  try {
    readFileSync(join(locks, 'test-device.lock', 'owner.json'));
    return true;
  } catch {
    return false;
  }
}

test('a phase shorter than warm-up + k calibrates on what it has; τ = units × median; a restored record stands', async () => {
  const cal = new Calibration('short-device', 'iteration', 3, { k: 5, warmup: 2 });
  for (let i = 0; i < 3; i++) {
    await cal.begin();
    await cal.end();
  }
  const r = cal.record();
  assert.deepEqual([r.warmup, r.k, r.units], [2, 1, 3]);
  assert.equal(cal.total, 3 * r.median_s);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  const resumed = new Calibration('short-device', 'iteration', 300, { k: 5, warmup: 2, runs: 100 });
  resumed.restore({ ...r, k: 5, median_s: 0.25 });
  assert.equal(resumed.done, true);
  assert.equal(resumed.total, 75);
  assert.equal(resumed.record().k, 5);
});

test("the cpu clock counts this process's work, not time it waits; the wall median is recorded beside it", async () => {
  const cal = new Calibration('clock-device', 'iteration', 2, { k: 2, warmup: 0, clock: 'cpu' });
  for (let i = 0; i < 2; i++) {
    await cal.begin();
    await new Promise((r) => setTimeout(r, 150)); // waiting, as a process the scheduler does not run
    await cal.end();
  }
  const r = cal.record();
  assert.equal(r.clock, 'cpu');
  assert.ok(r.median_wall_s >= 0.14, `wall ${r.median_wall_s}`);
  assert.ok(r.median_s < 0.05, `cpu ${r.median_s}`);
});
