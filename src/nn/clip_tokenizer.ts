/**
 * CLIP's byte-level BPE tokenizer, as transformers' CLIPTokenizer applies it to Stable Diffusion
 * prompts, read from a diffusers/transformers `tokenizer/` folder (vocab.json, merges.txt,
 * special_tokens_map.json). Written from the algorithm's description (Radford et al. 2021; Sennrich
 * et al. 2016) and checked token for token against the reference code
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
import { readFileSync } from 'node:fs';
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

  constructor(private readonly files: ClipTokenizerFiles, where = 'tokenizer') {
    files.merges.forEach((m, i) => this.ranks.set(m, i));
    const id = (t: string, role: string) => {
      const v = files.vocab[t];
      if (v === undefined) throw new UserError(`${where}: the ${role} token ${JSON.stringify(t)} is not in vocab.json`);
      return v;
    };
    this.bosId = id(files.bos, 'bos');
    this.eosId = id(files.eos, 'eos');
    this.padId = id(files.pad, 'pad');
    this.unkId = id(files.unk, 'unk');
  }

  /** A diffusers/transformers tokenizer folder; every problem is one line naming the file. */
  static fromFolder(dir: string): ClipTokenizer {
    const read = (name: string) => {
      try {
        return readFileSync(join(dir, name), 'utf-8');
      } catch {
        throw new UserError(`${join(dir, name)}: cannot read (a CLIP tokenizer folder has vocab.json and merges.txt)`);
      }
    };
    const json = (name: string, text: string): unknown => {
      try {
        return JSON.parse(text);
      } catch (e) {
        throw new UserError(`${join(dir, name)}: not valid JSON (${(e as Error).message.slice(0, 60)})`);
      }
    };
    const vocab = json('vocab.json', read('vocab.json'));
    if (!vocab || typeof vocab !== 'object' || Array.isArray(vocab) || !Object.values(vocab).every((v) => Number.isInteger(v))) {
      throw new UserError(`${join(dir, 'vocab.json')}: expected {token: integer id}`);
    }
    // merges.txt: an optional "#version" line, then "a b" per line.
    const merges = read('merges.txt')
      .split('\n')
      .filter((l, i) => !(i === 0 && l.startsWith('#version')))
      .map((l) => l.trimEnd())
      .filter((l) => l.length > 0);
    const bad = merges.findIndex((m) => m.split(' ').length !== 2);
    if (bad >= 0) throw new UserError(`${join(dir, 'merges.txt')}: line ${bad + 2}: expected two symbols, got ${JSON.stringify(merges[bad].slice(0, 40))}`);
    let special: Record<string, unknown> = {};
    try {
      special = json('special_tokens_map.json', readFileSync(join(dir, 'special_tokens_map.json'), 'utf-8')) as Record<string, unknown>;
    } catch (e) {
      if (e instanceof UserError && !/cannot read|ENOENT/.test(e.message)) throw e;
    }
    // Tokens may be plain strings or {content: …} (AddedToken).
    const tok = (k: string, dflt: string) => {
      const v = special[k];
      return typeof v === 'string' ? v : v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string' ? (v as { content: string }).content : dflt;
    };
    return new ClipTokenizer(
      { vocab: vocab as Record<string, number>, merges, bos: tok('bos_token', '<|startoftext|>'), eos: tok('eos_token', '<|endoftext|>'), pad: tok('pad_token', '<|endoftext|>'), unk: tok('unk_token', '<|endoftext|>') },
      dir,
    );
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
