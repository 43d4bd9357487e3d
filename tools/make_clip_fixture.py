#!/usr/bin/env python3
"""Makes test/fixtures/clip_tiny/: a tiny random-weight CLIP in the Hugging Face transformers layout
(config.json + model.safetensors + the tokenizer's vocab.json/merges.txt, CLIPModel) and the reference
outputs for parity tests.

Reference: openai/CLIP's clip/model.py (CLIP, VisionTransformer), run from a checkout. The weights
are written under transformers' names exactly as transformers' own converter does
(convert_clip_original_pytorch_to_hf.py: in_proj split into q/k/v, c_fc/c_proj → fc1/fc2,
ln_pre → pre_layrnorm, projections transposed), which checks that its CLIPModel gives the same
logits as this code. Older transformers checkpoints also carry the int64 position_ids buffers;
they are written too, so the loader's handling of them is exercised.

Weights are seeded normals, with LayerNorm and bias values moved off their trivial init so every
tensor matters; stored in float16 (SD's text encoder is commonly published so), and the reference
runs in float32 on exactly those rounded values.

  expected.safetensors  input_ids [3, 77] (I64, from test/fixtures/clip_tokenizer/cases.json),
                        last_hidden_state [3, 77, 32], text_embeds [3, 16],
                        pixel_values [2, 3, 32, 32], image_embeds [2, 16], logit_scale []

  /usr/bin/python3 tools/make_clip_fixture.py --clip-repo PATH_TO_openai_CLIP

Needs torch (Debian: python3-torch).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
from typing import Any, Dict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st_io  # noqa: E402

VOCAB = 4514  # the tokenizer fixture's vocabulary: 512 byte tokens + 4000 merges + 2 specials
TEXT = dict(width=32, heads=2, layers=2)
VISION = dict(resolution=32, patch=8, width=64, heads=4, layers=2)
EMBED = 16
PROMPTS = ["a photo of a cat", "a face with blond hair, wearing glasses!"]


def hf_state(m, dtype=np.float16):
    """openai/CLIP state → transformers CLIPModel names, as transformers' converter maps them, as `dtype`."""
    out = {}

    def layer(dst, blk):
        q, k, v = blk.attn.in_proj_weight.chunk(3, dim=0)
        qb, kb, vb = blk.attn.in_proj_bias.chunk(3, dim=0)
        for n, w, b in (
            ("q_proj", q, qb),
            ("k_proj", k, kb),
            ("v_proj", v, vb),
            ("out_proj", blk.attn.out_proj.weight, blk.attn.out_proj.bias),
        ):
            out[f"{dst}.self_attn.{n}.weight"] = w
            out[f"{dst}.self_attn.{n}.bias"] = b
        for n, ln in (("layer_norm1", blk.ln_1), ("layer_norm2", blk.ln_2)):
            out[f"{dst}.{n}.weight"] = ln.weight
            out[f"{dst}.{n}.bias"] = ln.bias
        out[f"{dst}.mlp.fc1.weight"] = blk.mlp.c_fc.weight
        out[f"{dst}.mlp.fc1.bias"] = blk.mlp.c_fc.bias
        out[f"{dst}.mlp.fc2.weight"] = blk.mlp.c_proj.weight
        out[f"{dst}.mlp.fc2.bias"] = blk.mlp.c_proj.bias

    out["text_model.embeddings.token_embedding.weight"] = m.token_embedding.weight
    out["text_model.embeddings.position_embedding.weight"] = m.positional_embedding
    for i, blk in enumerate(m.transformer.resblocks):
        layer(f"text_model.encoder.layers.{i}", blk)
    out["text_model.final_layer_norm.weight"] = m.ln_final.weight
    out["text_model.final_layer_norm.bias"] = m.ln_final.bias
    out["text_projection.weight"] = m.text_projection.T
    v = m.visual
    out["vision_model.embeddings.class_embedding"] = v.class_embedding
    out["vision_model.embeddings.patch_embedding.weight"] = v.conv1.weight
    out["vision_model.embeddings.position_embedding.weight"] = v.positional_embedding
    out["vision_model.pre_layrnorm.weight"] = v.ln_pre.weight
    out["vision_model.pre_layrnorm.bias"] = v.ln_pre.bias
    for i, blk in enumerate(v.transformer.resblocks):
        layer(f"vision_model.encoder.layers.{i}", blk)
    out["vision_model.post_layernorm.weight"] = v.ln_post.weight
    out["vision_model.post_layernorm.bias"] = v.ln_post.bias
    out["visual_projection.weight"] = v.proj.T
    out["logit_scale"] = m.logit_scale
    return {k: t.detach().numpy().astype(dtype) for k, t in out.items()}


def tiny_clip(model_py, torch):
    """openai/CLIP's CLIP at the tiny sizes, seeded 0, LayerNorms and biases off their init, logit
    scale at CLIP's init (1 / 0.07)."""
    torch.manual_seed(0)
    m = model_py.CLIP(
        EMBED,
        VISION["resolution"],
        VISION["layers"],
        VISION["width"],
        VISION["patch"],
        77,
        VOCAB,
        TEXT["width"],
        TEXT["heads"],
        TEXT["layers"],
    )
    # CLIP() gives the vision tower width // 64 heads (1 here): several heads test the split.
    m.visual = model_py.VisionTransformer(
        VISION["resolution"], VISION["patch"], VISION["width"], VISION["layers"], VISION["heads"], EMBED
    )
    with torch.no_grad():
        for name, p in m.named_parameters():
            if ("ln" in name) and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
        m.logit_scale.fill_(float(np.log(1 / 0.07)))
    return m.eval()


def file_state(m, torch):
    """model.safetensors' tensors (float16, with older checkpoints' position_ids); `m` then holds the
    float16-rounded values the file holds, which the reference runs on."""
    state = hf_state(m)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(p.half().float())
    state["text_model.embeddings.position_ids"] = np.arange(77, dtype=np.int64)[None]
    n_patches = (VISION["resolution"] // VISION["patch"]) ** 2
    state["vision_model.embeddings.position_ids"] = np.arange(n_patches + 1, dtype=np.int64)[None]
    return state


def prompt_ids(torch):
    """PROMPTS' token ids from the tokenizer fixture, and its longest prompt cut to 77 (its EOS is
    the last position)."""
    cases = json.load(open(os.path.join(HERE, "..", "test", "fixtures", "clip_tokenizer", "cases.json")))
    by_text = {c["text"]: c for c in cases["cases"]}
    rows = [by_text[p]["input_ids"] for p in PROMPTS]
    rows.append(max(by_text.values(), key=lambda c: len(c["ids"]))["input_ids"])
    return torch.tensor(rows, dtype=torch.int64)


def hf_config() -> Dict[str, Any]:
    """config.json: transformers' CLIPModel at the tiny sizes."""
    return {
        "architectures": ["CLIPModel"],
        "model_type": "clip",
        "projection_dim": EMBED,
        "logit_scale_init_value": 2.6592,
        "torch_dtype": "float16",
        "text_config": {
            "model_type": "clip_text_model",
            "vocab_size": VOCAB,
            "hidden_size": TEXT["width"],
            "intermediate_size": 4 * TEXT["width"],
            "num_hidden_layers": TEXT["layers"],
            "num_attention_heads": TEXT["heads"],
            "max_position_embeddings": 77,
            "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-5,
            "projection_dim": EMBED,
            "bos_token_id": VOCAB - 2,
            "eos_token_id": VOCAB - 1,
            "pad_token_id": 1,
        },
        "vision_config": {
            "model_type": "clip_vision_model",
            "hidden_size": VISION["width"],
            "intermediate_size": 4 * VISION["width"],
            "num_hidden_layers": VISION["layers"],
            "num_attention_heads": VISION["heads"],
            "image_size": VISION["resolution"],
            "patch_size": VISION["patch"],
            "num_channels": 3,
            "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-5,
            "projection_dim": EMBED,
        },
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip-repo", required=True, help="a checkout of github.com/openai/CLIP")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "test", "fixtures", "clip_tiny"))
    a = ap.parse_args()
    import importlib.util

    import torch

    # clip/model.py alone: the package's __init__ also loads the tokenizer, which needs ftfy.
    spec = importlib.util.spec_from_file_location("openai_clip_model", os.path.join(a.clip_repo, "clip", "model.py"))
    assert spec is not None and spec.loader is not None
    model_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model_py)
    rev = (
        subprocess.run(["git", "-C", a.clip_repo, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        or "unknown"
    )
    m = tiny_clip(model_py, torch)
    state = file_state(m, torch)
    ids = prompt_ids(torch)

    captured: Dict[str, Any] = {}
    m.ln_final.register_forward_hook(lambda mod, inp, outp: captured.__setitem__("hidden", outp))
    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(2, 3, VISION["resolution"], VISION["resolution"], generator=g)
    with torch.no_grad():
        text = m.encode_text(ids)
        image = m.encode_image(pixels)
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(hf_config(), f, indent=2)
    st_io.save(os.path.join(out, "model.safetensors"), state, {"format": "pt"})
    # A transformers CLIP repository carries its tokenizer files beside the model: the tokenizer fixture's.
    for name in ("vocab.json", "merges.txt", "special_tokens_map.json"):
        shutil.copy(os.path.join(HERE, "..", "test", "fixtures", "clip_tokenizer", name), out)
    st_io.save(
        os.path.join(out, "expected.safetensors"),
        {
            "input_ids": ids.numpy(),
            "last_hidden_state": captured["hidden"].numpy().astype(np.float32),
            "text_embeds": text.numpy().astype(np.float32),
            "pixel_values": pixels.numpy(),
            "image_embeds": image.numpy().astype(np.float32),
            "logit_scale": m.logit_scale.detach().numpy().astype(np.float32),
        },
        {
            "reference": f"openai/CLIP {rev[:12]} clip/model.py, torch {torch.__version__}, "
            "CPU float32 on float16-rounded weights"
        },
    )
    print(f"{out}: {len(state)} tensors; text_embeds[0][:4] {text[0, :4].tolist()}")


if __name__ == "__main__":
    main()
