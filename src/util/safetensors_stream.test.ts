/**
 * The lazy reader (SafetensorsFile, ShardedSafetensors, openWeights): same checks as the
 * whole-file parser, files beyond 2 GiB, BF16 and I64, sharded indexes, and a fuzz of files on disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from './rng.js';
import {
  SafetensorsError,
  asFloat32,
  asInt32,
  f32,
  parseSafetensors,
  serializeSafetensors,
  type StTensor,
} from './safetensors.js';
import { SafetensorsFile, openWeights } from './safetensors_lazy.js';

const dir = mkdtempSync(join(tmpdir(), 'sdd-st-'));

function sample(): Map<string, StTensor> {
  return new Map<string, StTensor>([
    ['a.weight', f32([2, 3], new Float32Array([1, 2, 3, 4, 5, 6]))],
    // bfloat16 bit patterns: 1.5 = 0x3FC0, -2 = 0xC000, 0.15625 = 0x3E20.
    ['b.bf16', { dtype: 'BF16', shape: [3], data: new Uint8Array(new Uint16Array([0x3fc0, 0xc000, 0x3e20]).buffer) }],
    [
      'c.position_ids',
      { dtype: 'I64', shape: [1, 4], data: new Uint8Array(new BigInt64Array([0n, 1n, 2n, 76n]).buffer) },
    ],
    ['d.bytes', { dtype: 'U8', shape: [2], data: new Uint8Array([7, 9]) }],
  ]);
}

test('lazy reader: header checked on open, each tensor read on demand, same bytes as the whole-file parser', () => {
  const bytes = serializeSafetensors(sample(), { format: 'pt' });
  const path = join(dir, 'one.safetensors');
  writeFileSync(path, bytes);
  const whole = parseSafetensors(bytes, path);
  const lazy = SafetensorsFile.open(path);
  assert.deepEqual(lazy.names().sort(), [...whole.tensors.keys()].sort());
  assert.deepEqual(lazy.metadata, { format: 'pt' });
  for (const name of lazy.names())
    assert.deepEqual(lazy.read(name), {
      ...whole.tensors.get(name)!,
      data: new Uint8Array(whole.tensors.get(name)!.data),
    });
  assert.deepEqual([...asFloat32(lazy.read('b.bf16'))], [1.5, -2, 0.15625]);
  assert.deepEqual([...asInt32(lazy.read('c.position_ids'))], [0, 1, 2, 76]);
  assert.deepEqual([...asInt32(lazy.read('d.bytes'))], [7, 9]);
  assert.throws(() => lazy.read('nope'), /one\.safetensors: no tensor nope/);
  assert.throws(() => asFloat32(lazy.read('c.position_ids')), /expected F32, F16 or BF16, got I64/);
  lazy.close();
  assert.throws(() => lazy.read('a.weight'), /after close/);
  const big: StTensor = { dtype: 'I64', shape: [1], data: new Uint8Array(new BigInt64Array([1n << 40n]).buffer) };
  assert.throws(() => asInt32(big), /does not fit int32/);
});

test('a file beyond 2 GiB: opened and read by ranges (sparse file, nothing large in memory)', () => {
  // 'huge' is 2.4 GB of F32 zeros (a hole in a sparse file); 'tail' sits after it, past 2^31.
  const hugeBytes = 600_000_000 * 4;
  const tail = new Float32Array([3.25, -1, 42]);
  const header = JSON.stringify({
    huge: { dtype: 'F32', shape: [600_000_000], data_offsets: [0, hugeBytes] },
    tail: { dtype: 'F32', shape: [3], data_offsets: [hugeBytes, hugeBytes + 12] },
  });
  const h = Buffer.from(header);
  const path = join(dir, 'huge.safetensors');
  const fd = openSync(path, 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.byteLength));
  writeSync(fd, len, 0, 8, 0);
  writeSync(fd, h, 0, h.byteLength, 8);
  writeSync(fd, new Uint8Array(tail.buffer), 0, 12, 8 + h.byteLength + hugeBytes);
  closeSync(fd);
  const f = openWeights(path);
  assert.deepEqual(f.info('huge'), { dtype: 'F32', shape: [600_000_000] });
  assert.deepEqual([...asFloat32(f.read('tail'))], [3.25, -1, 42]);
  f.close();
});

test('sharded index: tensors from their shards; a map that does not match the shards is refused by name', () => {
  const t = sample();
  const [s1, s2] = [new Map([...t].slice(0, 2)), new Map([...t].slice(2))];
  writeFileSync(join(dir, 'model-00001-of-00002.safetensors'), serializeSafetensors(s1));
  writeFileSync(join(dir, 'model-00002-of-00002.safetensors'), serializeSafetensors(s2));
  const map = (m: Record<string, string>) => JSON.stringify({ metadata: { total_size: 1 }, weight_map: m });
  const good: Record<string, string> = {};
  for (const k of s1.keys()) good[k] = 'model-00001-of-00002.safetensors';
  for (const k of s2.keys()) good[k] = 'model-00002-of-00002.safetensors';
  const index = join(dir, 'model.safetensors.index.json');
  writeFileSync(index, map(good));
  const w = openWeights(index);
  assert.deepEqual(w.names().sort(), [...t.keys()].sort());
  assert.deepEqual([...asFloat32(w.read('a.weight'))], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual([...asInt32(w.read('c.position_ids'))], [0, 1, 2, 76]);
  assert.equal(w.metadata.total_size, '1');
  w.close();
  const bad = (m: unknown, re: RegExp) => {
    writeFileSync(index, typeof m === 'string' ? m : JSON.stringify(m));
    assert.throws(
      () => openWeights(index),
      (e: unknown) => e instanceof SafetensorsError && re.test(e.message) && !e.message.includes('\n'),
      String(re),
    );
  };
  bad(
    { weight_map: { ...good, 'x.extra': 'model-00001-of-00002.safetensors' } },
    /weight_map\.x\.extra: model-00001-of-00002\.safetensors has no such tensor/,
  );
  const { 'd.bytes': _drop, ...missing } = good;
  bad({ weight_map: missing }, /model-00002-of-00002\.safetensors holds d\.bytes, which weight_map does not list/);
  bad(
    { weight_map: { ...good, 'a.weight': 'model-00003-of-00002.safetensors' } },
    /model-00003-of-00002\.safetensors: no such file/,
  );
  bad({ weight_map: { ...good, 'a.weight': '../etc/passwd' } }, /expected a shard file name next to the index/);
  bad({ weights: good }, /expected \{"weight_map"/);
  bad('{not json', /model\.safetensors\.index\.json: not valid JSON/);
});

test(
  'fuzz on disk: 1500 corrupted files open and read with only one-line SafetensorsErrors, never a crash or a hang',
  { timeout: 60_000 },
  () => {
    const base = serializeSafetensors(sample(), { m: 'x' });
    const r = new Rng(77);
    const path = join(dir, 'fuzz.safetensors');
    let accepted = 0;
    const t0 = performance.now();
    for (let i = 0; i < 1500; i++) {
      const buf = new Uint8Array(base);
      const kind = r.int(4);
      let out: Uint8Array = buf;
      if (kind === 0)
        for (let k = 0; k < 1 + r.int(4); k++) buf[r.int(Math.min(buf.length, 8 + 200))] = r.int(256); // header bytes
      else if (kind === 1)
        out = buf.subarray(0, r.int(buf.length)); // truncated
      else if (kind === 2)
        new DataView(buf.buffer).setBigUint64(0, BigInt(r.int(2 ** 31)) * BigInt(1 + r.int(3)), true); // header length
      else out = new Uint8Array([...buf, ...Array.from({ length: 1 + r.int(16) }, () => r.int(256))]); // trailing bytes
      writeFileSync(path, out);
      try {
        const f = openWeights(path);
        for (const n of f.names()) f.read(n);
        f.close();
        accepted++;
      } catch (e) {
        assert.ok(e instanceof SafetensorsError, `case ${i}: ${(e as Error).name}: ${(e as Error).message}`);
        assert.ok(
          e.message.startsWith(`${path}: `) && !e.message.includes('\n') && e.message.length < 300,
          `case ${i}: ${e.message}`,
        );
      }
    }
    assert.ok(accepted < 1000, `accepted ${accepted} of 1500`);
    assert.ok(performance.now() - t0 < 30_000);
  },
);
