/**
 * The CLIP tokenizer against the reference code's ids (test/fixtures/clip_tokenizer/, made by
 * tools/make_clip_tokenizer_fixture.py from openai/CLIP's simple_tokenizer.py with transformers'
 * cleaning): exact ids, BOS/EOS, truncation and padding to 77.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../util/env.js';
import { ClipTokenizer, CLIP_CONTEXT } from './clip_tokenizer.js';

const DIR = join(PROJECT_ROOT, 'test', 'fixtures', 'clip_tokenizer');
const { cases } = JSON.parse(readFileSync(join(DIR, 'cases.json'), 'utf-8')) as { cases: Array<{ text: string; ids: number[]; input_ids: number[] }> };

test('every fixture prompt gives the reference ids, and the padded 77-token input', () => {
  const tok = ClipTokenizer.fromFolder(DIR);
  assert.ok(cases.length >= 20);
  for (const c of cases) {
    assert.deepEqual(tok.encode(c.text), c.ids, JSON.stringify(c.text));
    assert.deepEqual([...tok.tokenize([c.text])], c.input_ids, JSON.stringify(c.text));
  }
  // A batch is the prompts' rows, in order.
  const batch = tok.tokenize(cases.slice(0, 3).map((c) => c.text));
  assert.equal(batch.length, 3 * CLIP_CONTEXT);
  assert.deepEqual([...batch.subarray(CLIP_CONTEXT, 2 * CLIP_CONTEXT)], cases[1].input_ids);
  // The long prompts are cut to BOS + 75 + EOS.
  const long = cases.find((c) => c.ids.length > 75)!;
  assert.equal(long.input_ids[76], tok.eosId);
});

test('a tokenizer folder that is missing files or malformed is refused in one line naming the file', () => {
  const d = mkdtempSync(join(tmpdir(), 'sdd-tok-'));
  assert.throws(() => ClipTokenizer.fromFolder(d), /vocab\.json: cannot read/);
  copyFileSync(join(DIR, 'vocab.json'), join(d, 'vocab.json'));
  writeFileSync(join(d, 'merges.txt'), '#version: 0.2\na b c\n');
  assert.throws(() => ClipTokenizer.fromFolder(d), /merges\.txt: line 2: expected two symbols/);
  writeFileSync(join(d, 'merges.txt'), '#version: 0.2\nt h\n');
  writeFileSync(join(d, 'special_tokens_map.json'), JSON.stringify({ pad_token: { content: '<|nope|>' } }));
  assert.throws(() => ClipTokenizer.fromFolder(d), /the pad token "<\|nope\|>" is not in vocab\.json/);
  writeFileSync(join(d, 'special_tokens_map.json'), JSON.stringify({ pad_token: '!' }));
  // SD 2's tokenizer pads with "!" (id 0).
  const tok = ClipTokenizer.fromFolder(d);
  assert.equal(tok.padId, 0);
  assert.equal(tok.tokenize(['a'])[CLIP_CONTEXT - 1], 0);
  writeFileSync(join(d, 'vocab.json'), '[1, 2]');
  assert.throws(() => ClipTokenizer.fromFolder(d), /vocab\.json: expected \{token: integer id\}/);
});
