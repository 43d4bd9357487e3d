/** The safetensors reader rejects every malformed file with one SafetensorsError line naming it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from './rng.js';
import {
  DTYPE_BYTES,
  SafetensorsError,
  f16,
  f32,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  type StTensor,
} from './safetensors.js';

const FILE = 'w.safetensors';

function sample(): Uint8Array {
  const t = new Map<string, StTensor>([
    ['a.weight', f32([2, 3], new Float32Array([1, 2, 3, 4, 5, 6]))],
    ['b.bias', f16([4], new Float32Array([0.5, -1, 2, 8]))],
    ['c.ids', { dtype: 'I32', shape: [3], data: new Uint8Array(new Int32Array([7, 8, 9]).buffer) }],
    ['d.bytes', { dtype: 'U8', shape: [5], data: new Uint8Array([1, 2, 3, 4, 5]) }],
    ['e.empty', f32([0, 4], new Float32Array(0))],
  ]);
  return serializeSafetensors(t, { model: 'test' });
}

/** A file from a header object and a data buffer (no checks: for writing bad files on purpose). */
function build(header: unknown, data: Uint8Array, headerText = JSON.stringify(header)): Uint8Array {
  const h = Buffer.from(headerText, 'utf-8');
  const out = new Uint8Array(8 + h.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.byteLength), true);
  out.set(h, 8);
  out.set(data, 8 + h.byteLength);
  return out;
}

function rejects(buf: Uint8Array, re: RegExp): void {
  assert.throws(
    () => parseSafetensors(buf, FILE),
    (e: unknown) => e instanceof SafetensorsError && e.message.startsWith(`${FILE}: `) && re.test(e.message),
  );
}

const entry = (b: number, e: number, shape = [(e - b) / 4]) => ({ dtype: 'F32', shape, data_offsets: [b, e] });

test('accepts tensors whose header order differs from their data order (as the reference writer lays out)', () => {
  const data = new Uint8Array(new Float32Array([1, 2, 3]).buffer);
  const st = parseSafetensors(build({ z: entry(0, 8), a: entry(8, 12) }, data), FILE);
  assert.deepEqual([...st.tensors.keys()], ['z', 'a']);
  assert.deepEqual(st.tensors.get('a')!.shape, [1]);
});

test('rejects overlap, gaps, trailing bytes, reversed offsets, wrong byte counts, bad metadata, duplicates', () => {
  const data = new Uint8Array(16);
  rejects(build({ a: entry(0, 8), b: entry(4, 12) }, data.subarray(0, 12)), /b: data_offsets \[4, 12\] overlap/);
  rejects(build({ a: entry(0, 8), b: entry(0, 8) }, data.subarray(0, 8)), /overlap/);
  rejects(build({ a: entry(0, 4), b: entry(8, 12) }, data.subarray(0, 12)), /b: .*leave a gap after byte 4/);
  rejects(build({ a: entry(4, 8) }, data.subarray(0, 8)), /a: .*leave a gap after byte 0/);
  rejects(build({ a: entry(0, 8) }, data.subarray(0, 12)), /4 trailing bytes after the last tensor/);
  rejects(
    build({ a: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, data.subarray(0, 8)),
    /a: data_offsets \[8, 4\] end before they begin/,
  );
  rejects(build({ a: entry(0, 8, [3]) }, data.subarray(0, 8)), /a: 8 bytes for shape \[3\] F32 \(expected 12\)/);
  rejects(build({ a: { dtype: 'F16', shape: [2, 2], data_offsets: [0, 4] } }, data.subarray(0, 4)), /expected 8/);
  rejects(
    build({ __metadata__: { step: 5 }, a: entry(0, 4) }, data.subarray(0, 4)),
    /__metadata__\.step: expected a string/,
  );
  rejects(build({ __metadata__: [], a: entry(0, 4) }, data.subarray(0, 4)), /__metadata__: expected an object/);
  const dup = `{"a":${JSON.stringify(entry(0, 4))},"a":${JSON.stringify(entry(4, 8))}}`;
  rejects(build(null, data.subarray(0, 8), dup), /a: key appears twice/);
  rejects(build({ a: null }, data.subarray(0, 0)), /a: expected \{dtype, shape, data_offsets\}/);
  rejects(
    build({ a: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, data.subarray(0, 8)),
    /a: unsupported dtype "F64"/,
  );
  rejects(
    build({ a: { dtype: 'toString', shape: [1], data_offsets: [0, 8] } }, data.subarray(0, 8)),
    /unsupported dtype/,
  );
  rejects(build({ 'bad\nname': entry(0, 4, [2]) }, data.subarray(0, 4)), /"bad\\nname": 4 bytes/);
  rejects(build([1, 2], data.subarray(0, 0)), /header is not a JSON object/);
});

test('readSafetensors: a missing path or a folder is a SafetensorsError naming it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'st-'));
  assert.throws(
    () => readSafetensors(join(dir, 'nope.safetensors')),
    (e: unknown) => e instanceof SafetensorsError && /nope\.safetensors: no such file$/.test((e as Error).message),
  );
  assert.throws(
    () => readSafetensors(dir),
    (e: unknown) =>
      e instanceof SafetensorsError && (e as Error).message === `${dir}: is a folder, expected a .safetensors file`,
  );
  writeFileSync(join(dir, 'ok.safetensors'), sample());
  assert.equal(readSafetensors(join(dir, 'ok.safetensors')).tensors.size, 5);
});

/** A JSON value that a fuzzed header field might hold. */
function junk(r: Rng): unknown {
  const n = r.int(11);
  if (n === 0) return null;
  if (n === 1) return -r.int(100);
  if (n === 2) return r.uniform(0, 50);
  if (n === 3) return 2 ** 53 + r.int(10);
  if (n === 4) return 'x';
  if (n === 5) return [];
  if (n === 6) return [r.int(200)];
  if (n === 7) return [r.int(200), r.int(200), r.int(200)];
  if (n === 8) return {};
  if (n === 9) return r.pick(['F32', 'F16', 'I32', 'U8', 'BF16', 'F64', '__proto__', 'constructor']);
  return 1e308;
}

/** One random corruption of a valid file: bytes, length, header length, or a header field. */
function mutate(base: Uint8Array, r: Rng): Uint8Array {
  const hlen = Number(new DataView(base.buffer, base.byteOffset).getBigUint64(0, true));
  const kind = r.int(6);
  if (kind === 0) {
    const b = base.slice();
    const flips = 1 + r.int(4);
    // Half the flips land in the header, where they change structure rather than values.
    for (let i = 0; i < flips; i++) b[r.next() < 0.5 ? 8 + r.int(hlen) : r.int(b.length)] ^= 1 << r.int(8);
    return b;
  }
  if (kind === 1) return base.slice(0, r.int(base.length));
  if (kind === 2) return Buffer.concat([base, new Uint8Array(1 + r.int(16)).map(() => r.int(256))]);
  if (kind === 3) {
    const b = base.slice();
    const v = r.pick([
      0n,
      1n,
      BigInt(hlen - 1 - r.int(8)),
      BigInt(hlen + 1 + r.int(64)),
      BigInt(r.int(2 ** 30)),
      2n ** 64n - 1n,
      2n ** 63n,
    ]);
    new DataView(b.buffer).setBigUint64(0, v, true);
    return b;
  }
  const header = JSON.parse(Buffer.from(base.subarray(8, 8 + hlen)).toString('utf-8')) as Record<
    string,
    Record<string, unknown>
  >;
  const data = base.subarray(8 + hlen);
  const names = Object.keys(header);
  if (kind === 4) {
    const name = r.pick(names);
    const field = r.pick([
      'dtype',
      'shape',
      'data_offsets',
      'data_offsets.0',
      'data_offsets.1',
      'shape.0',
      'delete',
      'whole',
      'meta',
    ]);
    const e = header[name];
    if (field === 'delete') delete header[name];
    else if (field === 'whole') (header as Record<string, unknown>)[name] = junk(r);
    else if (field === 'meta') header.__metadata__ = { k: junk(r) } as Record<string, unknown>;
    else if (field.includes('.')) {
      const [f, i] = field.split('.');
      if (Array.isArray(e[f]))
        (e[f] as unknown[])[Number(i)] = r.next() < 0.5 ? junk(r) : ((e[f] as number[])[Number(i)] ?? 0) + r.int(9) - 4;
    } else e[field] = junk(r);
    return build(header, data);
  }
  // A second copy of a key, or a header text cut short or padded with garbage.
  const text = JSON.stringify(header);
  const choice = r.int(3);
  if (choice === 0)
    return build(
      null,
      data,
      text.slice(0, -1) + `,${JSON.stringify(r.pick(names))}:${JSON.stringify(header[r.pick(names)])}}`,
    );
  if (choice === 1) return build(null, data, text.slice(0, r.int(text.length)));
  return build(null, data, text + String.fromCharCode(...Array.from({ length: 1 + r.int(4) }, () => r.int(0x3000))));
}

test('fuzz: 3000 random corruptions raise only one-line SafetensorsErrors naming the file', { timeout: 30_000 }, () => {
  const base = sample();
  assert.equal(parseSafetensors(base, FILE).tensors.size, 5);
  const r = new Rng(2024);
  const t0 = performance.now();
  const seen = new Map<string, number>();
  let accepted = 0;
  for (let i = 0; i < 3000; i++) {
    const buf = mutate(base, r);
    try {
      const st = parseSafetensors(buf, FILE);
      accepted++;
      // Whatever passes is self-consistent: every tensor's bytes match its shape and dtype.
      let total = 0;
      for (const t of st.tensors.values()) {
        const want = t.shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[t.dtype];
        assert.equal(t.data.byteLength, want, `case ${i}`);
        total += want;
      }
      const hlen = Number(new DataView(buf.buffer, buf.byteOffset).getBigUint64(0, true));
      assert.equal(total, buf.byteLength - 8 - hlen, `case ${i}: tensors tile the data`);
    } catch (e) {
      assert.ok(e instanceof SafetensorsError, `case ${i}: ${(e as Error).name}: ${(e as Error).message}`);
      assert.ok(e.message.startsWith(`${FILE}: `) && !e.message.includes('\n'), `case ${i}: ${e.message}`);
      assert.ok(e.message.length < 300, `case ${i}: message too long (${e.message.length})`);
      const kind = e.message
        .replace(/[\d"]+/g, '#')
        .split(': ')
        .slice(-1)[0]
        .slice(0, 30);
      seen.set(kind, (seen.get(kind) ?? 0) + 1);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  // Most corruptions are caught; byte flips inside tensor data are undetectable and legitimately pass.
  assert.ok(accepted < 1000, `accepted ${accepted} of 3000`);
  assert.ok(seen.size >= 10, `only ${seen.size} kinds of error: ${[...seen.keys()].join(' | ')}`);
  assert.ok(seconds < 10, `fuzz took ${seconds.toFixed(1)} s`);
});
