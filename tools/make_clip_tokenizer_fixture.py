#!/usr/bin/env python3
"""Makes test/fixtures/clip_tokenizer/: a small CLIP BPE tokenizer in the diffusers/transformers
folder layout (vocab.json, merges.txt, special_tokens_map.json) and the token ids the reference
code gives for a set of prompts (cases.json).

Reference: openai/CLIP's clip/simple_tokenizer.py (the BPE and byte encoder transformers'
CLIPTokenizer reimplements), run from a checkout, with transformers' text cleaning (CLIPTokenizer
with ftfy: whitespace_clean(fix_text(text)).lower(), no html.unescape) and its call convention for
Stable Diffusion: BOS + ids[:75] + EOS, padded to 77 with the pad token (SD v1: <|endoftext|>).

The vocabulary is CLIP's own, cut to its first MERGES merges so the fixture stays small: the
algorithm is the same at any vocabulary size. ftfy is not in Debian; fix_text is replaced by NFC
normalisation (ftfy's default normalisation), so the prompts avoid mojibake that ftfy would repair.

  python3 tools/make_clip_tokenizer_fixture.py --clip-repo PATH_TO_openai_CLIP [--merges 4000]
"""
import argparse
import gzip
import json
import os
import sys
import types
import unicodedata
from typing import Any, Dict, List

CASES = [
    "",
    "a photo of a cat",
    "A Photo Of A CAT",
    "a  photo\tof\n a   dog ",
    "a face with a smile",
    "a face with blond hair, wearing glasses!",
    "it's a man's face; they're smiling, we'll see",
    "red-haired woman (portrait) [4k] {hdr}",
    "12345 and 3.14159",
    "café naïve résumé",
    "cafe\u0301 (decomposed accent)",
    "Ünïcödé ÄÖÜ ß",
    "日本語のテキスト",
    "emoji 😀🎉 test",
    "<|startoftext|>literal special tokens<|endoftext|>",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "x" * 200,
    " ".join(["portrait of a person with curly hair"] * 12),
    "pose:frontal->side",
    "hair_color:black->blond",
    "!!! ??? ... ---",
    "tab\there",
    "UPPER lower MiXeD",
    "the quick brown fox jumps over the lazy dog",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip-repo", required=True, help="a checkout of github.com/openai/CLIP")
    ap.add_argument("--merges", type=int, default=4000)
    ap.add_argument(
        "--out", default=os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "clip_tokenizer")
    )
    a = ap.parse_args()

    # ftfy stand-in (see the module docstring), then the reference module itself.
    def fix_text(t: str) -> str:
        return unicodedata.normalize("NFC", t)

    ftfy = types.ModuleType("ftfy")
    setattr(ftfy, "fix_text", fix_text)  # by name: a ModuleType declares no fix_text
    sys.modules["ftfy"] = ftfy
    sys.path.insert(0, os.path.join(a.clip_repo, "clip"))
    import simple_tokenizer as st  # noqa: E402

    full = os.path.join(a.clip_repo, "clip", "bpe_simple_vocab_16e6.txt.gz")
    with gzip.open(full, "rb") as gz:
        lines = gz.read().decode("utf-8").split("\n")
    os.makedirs(a.out, exist_ok=True)
    small = os.path.join(a.out, "_bpe.txt.gz")
    with gzip.open(small, "wb") as gz:
        gz.write("\n".join(lines[: 1 + a.merges]).encode("utf-8"))
    tok = st.SimpleTokenizer(small)
    os.remove(small)
    merges = lines[1 : 1 + a.merges]
    with open(os.path.join(a.out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(tok.encoder, f, ensure_ascii=False)
    with open(os.path.join(a.out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    with open(os.path.join(a.out, "special_tokens_map.json"), "w") as f:
        json.dump(
            {
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
            },
            f,
        )

    bos, eos = tok.encoder["<|startoftext|>"], tok.encoder["<|endoftext|>"]

    def ids(text: str) -> List[int]:
        text = st.whitespace_clean(fix_text(text)).lower()
        out: List[int] = []
        for token in st.re.findall(tok.pat, text):
            token = "".join(tok.byte_encoder[b] for b in token.encode("utf-8"))
            out.extend(tok.encoder.get(t, eos) for t in tok.bpe(token).split(" "))
        return out

    cases: List[Dict[str, Any]] = []
    for text in CASES:
        body = ids(text)
        padded = ([bos] + body[:75] + [eos] + [eos] * 77)[:77]
        cases.append({"text": text, "ids": body, "input_ids": padded})
    with open(os.path.join(a.out, "cases.json"), "w", encoding="utf-8") as f:
        # One case per line: diffable.
        head = {
            "reference": "openai/CLIP simple_tokenizer.py BPE + transformers CLIPTokenizer cleaning; fix_text = NFC",
            "merges": a.merges,
        }
        f.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]}\n")
    print(f"wrote {a.out}: vocab {len(tok.encoder)}, {len(cases)} cases")


if __name__ == "__main__":
    main()
