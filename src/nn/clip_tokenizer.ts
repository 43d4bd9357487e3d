/**
 * CLIP's byte-level BPE tokenizer, as transformers' CLIPTokenizer applies it to Stable Diffusion
 * prompts, read from a diffusers/transformers `tokenizer/` folder: vocab.json, merges.txt and
 * special_tokens_map.json, or (transformers 5 saves nothing else) the Hugging Face `tokenizers`
 * file tokenizer.json, whose BPE model, added tokens and pipeline must be CLIP's. Written from the
 * algorithm's description (Radford et al. 2021; Sennrich et al. 2016) and checked token for token
 * against the reference code
 * (tools/make_clip_tokenizer_fixture.py, test/fixtures/clip_tokenizer/).
 *
 * Steps: clean (Unicode NFC, every whitespace run → one space, trim, lower case); split with CLIP's
 * pattern (special tokens, English contractions, letter runs, single digits, other-symbol runs);
 * map each piece's UTF-8 bytes to printable characters; merge symbol pairs by rank, lowest first,
 * the last symbol of a word carrying `</w>`; look the symbols up in the vocabulary.
 *
 * Known difference: the reference runs ftfy.fix_text, which also repairs mojibake; only its NFC
 * normalisation is reproduced here, so text with broken encodings can tokenize differently.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';

const PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/giu;
export const CLIP_CONTEXT = 77;

/** Bytes 0..255 → printable characters (printable Latin-1 stay; the rest move above U+0100). */
function byteEncoder(): string[] {
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep(b) ? b : 256 + extra++);
  return out;
}

const BYTES = byteEncoder();
const UTF8 = new TextEncoder();

export interface ClipTokenizerFiles {
  vocab: Record<string, number>;
  /** Merge rules in rank order, each "a b". */
  merges: string[];
  bos: string;
  eos: string;
  pad: string;
  unk: string;
}

export class ClipTokenizer {
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, string[]>();
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  private readonly unkId: number;

  constructor(
    private readonly files: ClipTokenizerFiles,
    where = 'tokenizer',
  ) {
    files.merges.forEach((m, i) => this.ranks.set(m, i));
    const id = (t: string, role: string) => {
      const v = files.vocab[t];
      if (v === undefined)
        throw new UserError(`${where}: the ${role} token ${JSON.stringify(t)} is not in the vocabulary`);
      return v;
    };
    this.bosId = id(files.bos, 'bos');
    this.eosId = id(files.eos, 'eos');
    this.padId = id(files.pad, 'pad');
    this.unkId = id(files.unk, 'unk');
  }

  /**
   * A diffusers/transformers tokenizer folder; every problem is one line naming the file. The
   * BPE comes from vocab.json + merges.txt, or from tokenizer.json when those are absent.
   */
  static fromFolder(dir: string): ClipTokenizer {
    const legacy = existsSync(join(dir, 'vocab.json')) || !existsSync(join(dir, 'tokenizer.json'));
    const bpe = legacy ? readVocabAndMerges(dir) : readTokenizerJson(join(dir, 'tokenizer.json'));
    const special = { ...bpe.special, ...readSpecialTokens(dir) };
    return new ClipTokenizer({ vocab: bpe.vocab, merges: bpe.merges, ...special }, dir);
  }

  /** The token ids of a text, without BOS/EOS. */
  encode(text: string): number[] {
    const clean = text.normalize('NFC').replace(/\s+/gu, ' ').trim().toLowerCase();
    const ids: number[] = [];
    for (const m of clean.matchAll(PATTERN)) {
      const piece = [...UTF8.encode(m[0])].map((b) => BYTES[b]).join('');
      for (const sym of this.bpe(piece)) ids.push(this.files.vocab[sym] ?? this.unkId);
    }
    return ids;
  }

  /**
   * Model input as Stable Diffusion's pipelines make it: BOS, at most context − 2 ids, EOS, then
   * padding to `context` (truncation drops the tail, as transformers' truncation=True does).
   */
  tokenize(texts: string[], context = CLIP_CONTEXT): Int32Array {
    const out = new Int32Array(texts.length * context).fill(this.padId);
    texts.forEach((t, i) => {
      const ids = [this.bosId, ...this.encode(t).slice(0, context - 2), this.eosId];
      out.set(ids, i * context);
    });
    return out;
  }

  /** Merges the pair of lowest rank, everywhere in the word, until no ranked pair is left. */
  private bpe(piece: string): string[] {
    const hit = this.cache.get(piece);
    if (hit) return hit;
    if (piece === '<|startoftext|>' || piece === '<|endoftext|>') return [piece];
    const chars = [...piece];
    let word = [...chars.slice(0, -1), chars[chars.length - 1] + '</w>'];
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const [a, b] = [word[best], word[best + 1]];
      const merged: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i < word.length - 1 && word[i] === a && word[i + 1] === b) {
          merged.push(a + b);
          i++;
        } else merged.push(word[i]);
      }
      word = merged;
    }
    this.cache.set(piece, word);
    return word;
  }
}

type Specials = Pick<ClipTokenizerFiles, 'bos' | 'eos' | 'pad' | 'unk'>;

/** The BPE of a folder, and the special tokens its format implies (before any token map file). */
interface FolderBpe {
  vocab: Record<string, number>;
  merges: string[];
  special: Specials;
}

const CLIP_SPECIALS: Specials = {
  bos: '<|startoftext|>',
  eos: '<|endoftext|>',
  pad: '<|endoftext|>',
  unk: '<|endoftext|>',
};

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf-8');
  } catch {
    throw new UserError(`${file}: cannot read (${what})`);
  }
}

function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message.slice(0, 60)})`);
  }
}

function isVocab(v: unknown): v is Record<string, number> {
  return !!v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((id) => Number.isInteger(id));
}

/** vocab.json and merges.txt (an optional "#version" line, then "a b" per line). */
function readVocabAndMerges(dir: string): FolderBpe {
  const what = 'a CLIP tokenizer folder has vocab.json and merges.txt, or tokenizer.json';
  const vocabFile = join(dir, 'vocab.json');
  const vocab = parseJson(vocabFile, readText(vocabFile, what));
  if (!isVocab(vocab)) throw new UserError(`${vocabFile}: expected {token: integer id}`);
  const merges = readText(join(dir, 'merges.txt'), what)
    .split('\n')
    .filter((l, i) => !(i === 0 && l.startsWith('#version')))
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0);
  const bad = merges.findIndex((m) => m.split(' ').length !== 2);
  if (bad >= 0)
    throw new UserError(
      `${join(dir, 'merges.txt')}: line ${bad + 2}: expected two symbols, got ${JSON.stringify(merges[bad].slice(0, 40))}`,
    );
  return { vocab, merges, special: CLIP_SPECIALS };
}

/**
 * Special tokens from special_tokens_map.json, else tokenizer_config.json (where transformers 5
 * keeps them), as plain strings or {content: …} (AddedToken); absent files and keys give nothing.
 */
function readSpecialTokens(dir: string): Partial<Specials> {
  const file = ['special_tokens_map.json', 'tokenizer_config.json'].map((f) => join(dir, f)).find((f) => existsSync(f));
  if (!file) return {};
  const o = parseJson(file, readText(file, 'special tokens')) as Record<string, unknown>;
  const tok = (k: string): string | undefined => {
    const v = o?.[k];
    if (typeof v === 'string') return v;
    return v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string'
      ? (v as { content: string }).content
      : undefined;
  };
  const out: Partial<Specials> = {};
  for (const [role, key] of [
    ['bos', 'bos_token'],
    ['eos', 'eos_token'],
    ['pad', 'pad_token'],
    ['unk', 'unk_token'],
  ] as const) {
    const v = tok(key);
    if (v !== undefined) out[role] = v;
  }
  return out;
}

// ------------------------------------------------------------------ tokenizer.json

/** CLIP's split (transformers' converter; the special tokens are added tokens there). */
const CLIP_SPLIT = "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

/** One node of the normalizer / pre-tokenizer tree, matched against CLIP's, naming the first difference. */
function expectShape(file: string, path: string, got: unknown, want: Obj): void {
  if (!isObj(got))
    throw new UserError(`${file}: ${path}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
  for (const [k, v] of Object.entries(want)) {
    const g = got[k];
    if (Array.isArray(v)) {
      if (!Array.isArray(g) || g.length !== v.length)
        throw new UserError(
          `${file}: ${path}.${k}: expected ${v.length} steps, got ${JSON.stringify(g)?.slice(0, 120)}`,
        );
      v.forEach((w, i) => expectShape(file, `${path}.${k}.${i}`, g[i], w as Obj));
    } else if (isObj(v)) expectShape(file, `${path}.${k}`, g, v);
    else if (g !== v)
      throw new UserError(
        `${file}: ${path}.${k}: ${JSON.stringify(g)} is not supported (CLIP's tokenizer has ${JSON.stringify(v)})`,
      );
  }
}

/**
 * The text pipeline this tokenizer implements: NFC, whitespace runs → " ", lower case; CLIP's split
 * (pieces kept, whitespace removed), then byte-level without a prefix space (its own GPT-2 split
 * finds nothing more to split in CLIP's pieces, so use_regex does not matter).
 */
const CLIP_NORMALIZER: Obj = {
  type: 'Sequence',
  normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
};
const CLIP_PRE_TOKENIZER: Obj = {
  type: 'Sequence',
  pretokenizers: [
    { type: 'Split', pattern: { Regex: CLIP_SPLIT }, behavior: 'Removed', invert: true },
    { type: 'ByteLevel', add_prefix_space: false },
  ],
};

/** model.merges: "a b" strings (tokenizers < 0.20) or [a, b] pairs (later), as "a b". */
function mergesOf(file: string, v: unknown): string[] {
  if (!Array.isArray(v)) throw new UserError(`${file}: model.merges: expected a list`);
  return v.map((m, i) => {
    if (typeof m === 'string' && m.split(' ').length === 2) return m;
    if (Array.isArray(m) && m.length === 2 && m.every((e) => typeof e === 'string' && e.length > 0 && !e.includes(' ')))
      return `${m[0]} ${m[1]}`;
    throw new UserError(
      `${file}: model.merges[${i}]: expected "a b" or ["a", "b"], got ${JSON.stringify(m).slice(0, 60)}`,
    );
  });
}

/** model: a BPE with CLIP's word-end suffix and none of the options this port does not implement. */
function bpeModel(
  file: string,
  model: unknown,
): { vocab: Record<string, number>; merges: string[]; unk: string | undefined } {
  if (!isObj(model)) throw new UserError(`${file}: model: missing`);
  if (model.type !== 'BPE')
    throw new UserError(
      `${file}: model.type ${JSON.stringify(model.type)} is not supported (a CLIP tokenizer is "BPE")`,
    );
  expectShape(file, 'model', model, { end_of_word_suffix: '</w>' });
  const off: Array<[string, unknown[]]> = [
    ['continuing_subword_prefix', [undefined, null, '']],
    ['dropout', [undefined, null]],
    ['byte_fallback', [undefined, false]],
    ['ignore_merges', [undefined, false]],
    ['fuse_unk', [undefined, false]],
  ];
  for (const [k, ok] of off)
    if (!ok.includes(model[k]))
      throw new UserError(
        `${file}: model.${k} ${JSON.stringify(model[k])} is not supported (CLIP's BPE has ${JSON.stringify(ok[ok.length - 1])})`,
      );
  if (!isVocab(model.vocab)) throw new UserError(`${file}: model.vocab: expected {token: integer id}`);
  return {
    vocab: model.vocab,
    merges: mergesOf(file, model.merges),
    unk: typeof model.unk_token === 'string' ? model.unk_token : undefined,
  };
}

/**
 * added_tokens: only CLIP's two special tokens, at their vocabulary ids (others would be matched
 * whole, which encode() does not do).
 */
function checkAddedTokens(file: string, added: unknown, vocab: Record<string, number>): void {
  if (added === undefined) return;
  if (!Array.isArray(added)) throw new UserError(`${file}: added_tokens: expected a list`);
  added.forEach((a, i) => {
    const content = isObj(a) ? a.content : undefined;
    if (content !== CLIP_SPECIALS.bos && content !== CLIP_SPECIALS.eos)
      throw new UserError(
        `${file}: added_tokens[${i}]: ${JSON.stringify(content)} is not supported (only ${CLIP_SPECIALS.bos} and ${CLIP_SPECIALS.eos})`,
      );
    if (isObj(a) && a.id !== vocab[content])
      throw new UserError(
        `${file}: added_tokens[${i}]: ${content} has id ${JSON.stringify(a.id)}, model.vocab says ${vocab[content]}`,
      );
  });
}

/** BOS/EOS from the post-processor (RobertaProcessing's cls and sep), when the file has one. */
function postProcessorSpecials(file: string, pp: unknown): Partial<Specials> {
  if (pp === undefined || pp === null) return {};
  if (!isObj(pp) || pp.type !== 'RobertaProcessing')
    throw new UserError(
      `${file}: post_processor ${JSON.stringify(isObj(pp) ? pp.type : pp)} is not supported (CLIP's is RobertaProcessing: BOS … EOS)`,
    );
  const name = (v: unknown) => (Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined);
  const [bos, eos] = [name(pp.cls), name(pp.sep)];
  if (!bos || !eos) throw new UserError(`${file}: post_processor: cls and sep must be [token, id]`);
  return { bos, eos };
}

/** A Hugging Face tokenizers file holding CLIP's tokenizer. */
function readTokenizerJson(file: string): FolderBpe {
  const o = parseJson(file, readText(file, 'a CLIP tokenizer folder has vocab.json and merges.txt, or tokenizer.json'));
  if (!isObj(o)) throw new UserError(`${file}: expected a JSON object`);
  const { vocab, merges, unk } = bpeModel(file, o.model);
  expectShape(file, 'normalizer', o.normalizer, CLIP_NORMALIZER);
  expectShape(file, 'pre_tokenizer', o.pre_tokenizer, CLIP_PRE_TOKENIZER);
  checkAddedTokens(file, o.added_tokens, vocab);
  return {
    vocab,
    merges,
    special: { ...CLIP_SPECIALS, ...(unk ? { unk } : {}), ...postProcessorSpecials(file, o.post_processor) },
  };
}
