/** Run store primitives: atomic writes, per-run locks with stale-owner takeover, safetensors bounds. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { writeJsonAtomic } from '../util/atomic.js';
import { readLock, tryLock, unlock, lockDir } from './lock.js';
import { parseSafetensors, serializeSafetensors, f32, f16, asFloat32, SafetensorsError } from '../util/safetensors.js';
import { fromHalf, toHalf } from '../util/f16.js';
import { tmp } from '../../test/helpers.js';
import { gitInfo } from '../util/env.js';

test('atomic JSON write leaves no temp files and replaces whole', () => {
  const d = tmp();
  const p = join(d, 'a', 'result.json');
  writeJsonAtomic(p, { v: 1 });
  writeJsonAtomic(p, { v: 2, more: 'x'.repeat(10000) });
  assert.equal(JSON.parse(readFileSync(p, 'utf-8')).v, 2);
  assert.deepEqual(readdirSync(join(d, 'a')), ['result.json']);
});

test('lock: one holder at a time; a dead owner is taken over; unlock only by the owner', async () => {
  const d = tmp();
  assert.equal(tryLock(d), true);
  const state = readLock(d);
  assert.ok(state.held && state.alive && state.owner?.pid === process.pid);
  // A second process must not get it while we live.
  const other = await execa(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `import('${join(import.meta.dirname, 'lock.ts')}').then(m => process.stdout.write(String(m.tryLock('${d}'))))`,
    ],
    { cwd: import.meta.dirname },
  );
  assert.equal(other.stdout, 'false');
  unlock(d);
  assert.equal(existsSync(lockDir(d)), false);
  // A lock left by a process that no longer exists is stale.
  const dead = await execa(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  mkdirSync(lockDir(d));
  writeFileSync(
    join(lockDir(d), 'owner.json'),
    JSON.stringify({ pid: Number(dead.stdout), host: hostname(), since: '' }),
  );
  const s2 = readLock(d);
  assert.ok(s2.held && !s2.alive);
  assert.equal(tryLock(d), true);
  assert.equal((readLock(d) as { owner: { pid: number } }).owner.pid, process.pid);
  unlock(d);
});

test('safetensors round-trip and bound checks', () => {
  const vals = new Float32Array([1, 2, 3, 4, 5, 6]);
  const buf = serializeSafetensors(new Map([['w', f32([2, 3], vals)]]), { step: '5' });
  const back = parseSafetensors(buf, 'x.safetensors');
  assert.deepEqual([...asFloat32(back.tensors.get('w')!)], [...vals]);
  assert.equal(back.metadata.step, '5');
  // Through a Node Buffer at an odd offset, as readFileSync returns (pooled, unaligned views).
  const pooled = Buffer.concat([Buffer.from([0]), Buffer.from(buf)]).subarray(1);
  assert.deepEqual([...asFloat32(parseSafetensors(pooled).tensors.get('w')!)], [...vals]);
  const bad = (b: Uint8Array, re: RegExp) =>
    assert.throws(
      () => parseSafetensors(b, 'f.st'),
      (e: Error) => e instanceof SafetensorsError && re.test(e.message),
    );
  bad(buf.slice(0, 5), /f\.st: truncated/);
  bad(buf.slice(0, buf.length - 4), /outside the .*buffer \(truncated\?\)/);
  const huge = buf.slice();
  new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
  bad(huge, /header length .* exceeds/);
  const garbled = buf.slice();
  garbled[9] = 0x7b; // '{' inside the header → invalid JSON
  garbled[10] = 0x7b;
  bad(garbled, /not valid JSON/);
});

test('fp16 tensors: exact for representable values, ≤ 2^-11 relative otherwise; edge cases', () => {
  const vals = new Float32Array([0, -0, 1, -2.5, 65504, 6.1035156e-5, 5.96e-8, 0.1, 3.14159, 1e-9, 1e6]);
  const back = asFloat32(parseSafetensors(serializeSafetensors(new Map([['h', f16([11], vals)]]))).tensors.get('h')!);
  assert.equal(back[2], 1);
  assert.equal(back[3], -2.5);
  assert.equal(back[4], 65504);
  for (const i of [7, 8])
    assert.ok(Math.abs(back[i] - vals[i]) <= Math.abs(vals[i]) * 2 ** -11 + 6e-8, `${vals[i]} → ${back[i]}`);
  assert.ok(Math.abs(back[8] - 3.14159) < 2e-3);
  assert.equal(back[9], 0, 'underflow to zero');
  assert.equal(back[10], Infinity, 'overflow to infinity');
  // Round to nearest even at the halfway point between 1 and the next half (1 + 2^-10).
  assert.equal(fromHalf(toHalf(1 + 2 ** -11)), 1);
  assert.equal(fromHalf(toHalf(1 + 3 * 2 ** -11)), 1 + 2 * 2 ** -10);
  assert.ok(Number.isNaN(fromHalf(toHalf(NaN))));
});

test('gitInfo: dirty reflects tracked changes outside the ignored paths only', async () => {
  const d = tmp();
  const git = (...a: string[]) => execa('git', ['-c', 'user.email=t@t', '-c', 'user.name=t', ...a], { cwd: d });
  await git('init', '-q');
  mkdirSync(join(d, 'zoo'));
  writeFileSync(join(d, 'code.ts'), 'a');
  writeFileSync(join(d, 'zoo', 'card.json'), '{}');
  await git('add', '.');
  await git('commit', '-qm', 'init');
  assert.equal(gitInfo(d, [join(d, 'zoo')]).dirty, false);
  writeFileSync(join(d, 'zoo', 'card.json'), '{"v":1}');
  assert.equal(gitInfo(d).dirty, true);
  assert.equal(gitInfo(d, [join(d, 'zoo')]).dirty, false);
  // A path outside the repository (a temp zoo) is skipped, not an error.
  assert.equal(gitInfo(d, [join(d, 'zoo'), tmp()]).dirty, false);
  writeFileSync(join(d, 'code.ts'), 'b');
  assert.equal(gitInfo(d, [join(d, 'zoo')]).dirty, true);
  assert.match(gitInfo(d).sha ?? '', /^[0-9a-f]{40}$/);
});
