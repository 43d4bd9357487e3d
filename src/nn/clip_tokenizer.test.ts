/**
 * The CLIP tokenizer against the reference code's ids (test/fixtures/clip_tokenizer/, made by
 * tools/make_clip_tokenizer_fixture.py from openai/CLIP's simple_tokenizer.py with transformers'
 * cleaning): exact ids, BOS/EOS, truncation and padding to 77. The same vocabulary and merges as
 * a transformers 5 folder holding only tokenizer.json (test/fixtures/clip_tokenizer_json/, written
 * by tools/make_clip_tokenizer_json.py, which checks the ids with the tokenizers library) give
 * identical ids.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../util/env.js';
import { ClipTokenizer, CLIP_CONTEXT } from './clip_tokenizer.js';

const DIR = join(PROJECT_ROOT, 'test', 'fixtures', 'clip_tokenizer');
const JSON_DIR = join(PROJECT_ROOT, 'test', 'fixtures', 'clip_tokenizer_json');
const { cases } = JSON.parse(readFileSync(join(DIR, 'cases.json'), 'utf-8')) as {
  cases: Array<{ text: string; ids: number[]; input_ids: number[] }>;
};

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
  assert.throws(() => ClipTokenizer.fromFolder(d), /the pad token "<\|nope\|>" is not in the vocabulary/);
  writeFileSync(join(d, 'special_tokens_map.json'), JSON.stringify({ pad_token: '!' }));
  // SD 2's tokenizer pads with "!" (id 0).
  const tok = ClipTokenizer.fromFolder(d);
  assert.equal(tok.padId, 0);
  assert.equal(tok.tokenize(['a'])[CLIP_CONTEXT - 1], 0);
  writeFileSync(join(d, 'vocab.json'), '[1, 2]');
  assert.throws(() => ClipTokenizer.fromFolder(d), /vocab\.json: expected \{token: integer id\}/);
});

/** Every fixture prompt: the reference ids and the padded input. */
function assertReferenceIds(tok: ClipTokenizer): void {
  for (const c of cases) {
    assert.deepEqual(tok.encode(c.text), c.ids, JSON.stringify(c.text));
    assert.deepEqual([...tok.tokenize([c.text])], c.input_ids, JSON.stringify(c.text));
  }
}

test('a folder with only tokenizer.json (transformers 5) gives identical ids, with merges as [a, b] pairs or "a b" strings', () => {
  const legacy = ClipTokenizer.fromFolder(DIR);
  const tok = ClipTokenizer.fromFolder(JSON_DIR);
  assert.deepEqual([tok.bosId, tok.eosId, tok.padId], [legacy.bosId, legacy.eosId, legacy.padId]);
  assertReferenceIds(tok);
  const d = mkdtempSync(join(tmpdir(), 'sdd-tokjson-'));
  const json = JSON.parse(readFileSync(join(JSON_DIR, 'tokenizer.json'), 'utf-8')) as { model: { merges: string[][] } };
  assert.ok(Array.isArray(json.model.merges[0]), 'the fixture has the newer [a, b] form');
  writeFileSync(
    join(d, 'tokenizer.json'),
    JSON.stringify({ ...json, model: { ...json.model, merges: json.model.merges.map((m) => m.join(' ')) } }),
  );
  assertReferenceIds(ClipTokenizer.fromFolder(d));
  // SD 2's pad token "!" from tokenizer_config.json, where transformers 5 keeps the special tokens.
  writeFileSync(join(d, 'tokenizer_config.json'), JSON.stringify({ pad_token: '!', model_max_length: 77 }));
  assert.equal(ClipTokenizer.fromFolder(d).padId, 0);
});

test("a tokenizer.json that is not CLIP's BPE pipeline is refused in one line naming the file and key", () => {
  const json = JSON.parse(readFileSync(join(JSON_DIR, 'tokenizer.json'), 'utf-8')) as {
    model: Record<string, unknown>;
    pre_tokenizer: Record<string, unknown>;
    added_tokens: unknown[];
  };
  const d = mkdtempSync(join(tmpdir(), 'sdd-tokjson-bad-'));
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [
      { model: { ...json.model, type: 'WordPiece' } },
      /tokenizer\.json: model\.type "WordPiece" is not supported \(a CLIP tokenizer is "BPE"\)/,
    ],
    [
      { model: { ...json.model, end_of_word_suffix: '' } },
      /tokenizer\.json: model\.end_of_word_suffix: "" is not supported/,
    ],
    [{ model: { ...json.model, fuse_unk: true } }, /tokenizer\.json: model\.fuse_unk true is not supported/],
    [
      { model: { ...json.model, merges: [['a', 'b'], ['a']] } },
      /tokenizer\.json: model\.merges\[1\]: expected "a b" or \["a", "b"\]/,
    ],
    [{ model: { ...json.model, vocab: [1] } }, /tokenizer\.json: model\.vocab: expected \{token: integer id\}/],
    [
      { normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Lowercase' }] } },
      /tokenizer\.json: normalizer\.normalizers: expected 3 steps/,
    ],
    [{ normalizer: null }, /tokenizer\.json: normalizer: expected/],
    [
      { pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true } },
      /tokenizer\.json: pre_tokenizer\.type: "ByteLevel" is not supported/,
    ],
    [
      { added_tokens: [...json.added_tokens, { id: 9, content: '<cat-toy>' }] },
      /tokenizer\.json: added_tokens\[2\]: "<cat-toy>" is not supported/,
    ],
    [
      { post_processor: { type: 'TemplateProcessing' } },
      /tokenizer\.json: post_processor "TemplateProcessing" is not supported/,
    ],
  ];
  const split = json.pre_tokenizer.pretokenizers as Array<Record<string, unknown>>;
  bad.push([
    {
      pre_tokenizer: { ...json.pre_tokenizer, pretokenizers: [{ ...split[0], pattern: { Regex: '\\w+' } }, split[1]] },
    },
    /tokenizer\.json: pre_tokenizer\.pretokenizers\.0\.pattern\.Regex: "\\\\w\+" is not supported/,
  ]);
  for (const [change, re] of bad) {
    writeFileSync(join(d, 'tokenizer.json'), JSON.stringify({ ...json, ...change }));
    assert.throws(() => ClipTokenizer.fromFolder(d), re, JSON.stringify(change).slice(0, 80));
  }
  writeFileSync(join(d, 'tokenizer.json'), '{oops');
  assert.throws(() => ClipTokenizer.fromFolder(d), /tokenizer\.json: not valid JSON/);
});
