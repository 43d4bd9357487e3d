#!/usr/bin/env python3
"""Writes test/fixtures/clip_tokenizer_json/tokenizer.json: the committed tiny CLIP tokenizer
(test/fixtures/clip_tokenizer: vocab.json, merges.txt) in the Hugging Face `tokenizers` format
that transformers 5 saves alone in a tokenizer folder (model.type "BPE" with vocab and merges,
added_tokens, NFC/whitespace/lower-case normalizer, CLIP's split + byte-level pre-tokenizer,
RobertaProcessing with BOS/EOS), the layout transformers' CLIP converter builds.

Merges are written as [a, b] pairs (tokenizers ≥ 0.20); the test also reads them as "a b" strings.

With the `tokenizers` package importable (not in Debian; e.g. a venv with `pip install
tokenizers`), the file is loaded by it and every prompt of test/fixtures/clip_tokenizer/cases.json
must give the reference ids (BOS + ids + EOS) — the check that the file means what we think.

  python3 tools/make_clip_tokenizer_json.py [--check-only]
"""
import argparse
import json
import os
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "test", "fixtures")
SRC = os.path.join(FIXTURES, "clip_tokenizer")
OUT = os.path.join(FIXTURES, "clip_tokenizer_json", "tokenizer.json")
SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def read_merges(path: str) -> List[List[str]]:
    """merges.txt: an optional "#version" line, then "a b" per line."""
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    return [line.split(" ") for line in lines if line]


def tokenizer_json(vocab: Dict[str, int], merges: List[List[str]]) -> dict:
    added = [
        {
            "id": vocab[t],
            "content": t,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": True,
            "special": True,
        }
        for t in (BOS, EOS)
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "NFC"},
                {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "},
                {"type": "Lowercase"},
            ],
        },
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": SPLIT}, "behavior": "Removed", "invert": True},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            ],
        },
        "post_processor": {
            "type": "RobertaProcessing",
            "sep": [EOS, vocab[EOS]],
            "cls": [BOS, vocab[BOS]],
            "trim_offsets": False,
            "add_prefix_space": False,
        },
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": EOS,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "</w>",
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": merges,
        },
    }


def check(path: str) -> None:
    """Every prompt of cases.json through the tokenizers library: BOS + reference ids + EOS."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        print("tokenizers is not importable: the ids were not checked against it")
        return
    tok = Tokenizer.from_file(path)
    with open(os.path.join(SRC, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    vocab = tok.get_vocab()
    bad = [c["text"] for c in cases if tok.encode(c["text"]).ids != [vocab[BOS], *c["ids"], vocab[EOS]]]
    if bad:
        raise SystemExit(f"tokenizers gives other ids than the reference for {len(bad)} of {len(cases)} prompts: {bad}")
    print(f"tokenizers: all {len(cases)} prompts give the reference ids")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--check-only", action="store_true", help="only check the committed file with the tokenizers library"
    )
    a = ap.parse_args()
    if not a.check_only:
        with open(os.path.join(SRC, "vocab.json"), encoding="utf-8") as f:
            vocab = json.load(f)
        merges = read_merges(os.path.join(SRC, "merges.txt"))
        os.makedirs(os.path.dirname(OUT), exist_ok=True)
        with open(OUT, "w", encoding="utf-8") as f:
            json.dump(tokenizer_json(vocab, merges), f, ensure_ascii=False)
        print(f"{OUT}: {len(vocab)} tokens, {len(merges)} merges")
    check(OUT)


if __name__ == "__main__":
    main()
