#!/usr/bin/env python3
"""Full-size parity data (not committed: several GB): Stable Diffusion v1-4-shaped UNet and VAE,
the CLIP ViT-L/14 text tower (SD v1's text encoder) and CLIP ViT-B/32, at their published sizes
with seeded random weights, written in the published layouts, plus reference outputs on fixed
inputs and the reference's time per forward. `node --import tsx bench/full_parity.ts DIR` then
loads every model through sdd-bench's loaders and reports max relative error and time side by side.

References, as for the tiny fixtures: diffusers v0.31.0 (UNet2DConditionModel, AutoencoderKL) with
tools/refstubs, openai/CLIP's model.py mapped to transformers' layout (tools/make_clip_fixture.py),
pytorch-fid for Inception (tools/make_inception_fixture.py is already full size).

  /usr/bin/python3 tools/make_full_parity.py --diffusers DIFFUSERS_v0.31.0 --clip-repo OPENAI_CLIP --out DIR \
      [--latent 16] [--device cpu|cuda]

--latent is the UNet's latent side (SD v1 at 512²: 64); the VAE runs at 8× that. On a GPU host
use --latent 64 --device cuda to time the references at SD's real shapes.
"""
import argparse
import importlib.util
import json
import os
import shutil
import sys
import time
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st_io  # noqa: E402
from make_clip_fixture import hf_state  # noqa: E402
from make_sd_fixture import SD14_SCHEDULER, perturb  # noqa: E402


def timed(fn, device, torch, repeats=3):
    """Median wall time of `repeats` calls after one warm-up (synchronised on CUDA)."""
    out = fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return out, float(np.median(times))


def clip_model(model_py, torch, seed, **k):
    torch.manual_seed(seed)
    m = model_py.CLIP(**k)
    perturb(m, torch, "ln")  # openai/CLIP names its LayerNorms ln_*
    return m.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--diffusers", required=True)
    ap.add_argument("--clip-repo", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--latent", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    sys.path[:0] = [os.path.join(a.diffusers, "src"), os.path.join(HERE, "refstubs")]
    import torch
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel

    spec = importlib.util.spec_from_file_location("openai_clip_model", os.path.join(a.clip_repo, "clip", "model.py"))
    assert spec is not None and spec.loader is not None, "not a loadable module file"
    model_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model_py)
    torch.set_grad_enabled(False)
    dev = a.device
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    sd = os.path.join(out, "sd")
    ref, times, sizes = {}, {}, {}

    tok = json.load(open(os.path.join(HERE, "..", "test", "fixtures", "clip_tokenizer", "cases.json")))
    ids = torch.tensor([c["input_ids"] for c in tok["cases"][1:3]], dtype=torch.int64)
    ref["input_ids"] = ids.numpy()

    # SD v1's text encoder: CLIP ViT-L/14's text tower (vision tower kept tiny: not part of SD).
    text = clip_model(
        model_py,
        torch,
        10,
        embed_dim=768,
        image_resolution=32,
        vision_layers=1,
        vision_width=64,
        vision_patch_size=32,
        context_length=77,
        vocab_size=49408,
        transformer_width=768,
        transformer_heads=12,
        transformer_layers=12,
    ).to(dev)
    hidden: dict[str, Any] = {}
    text.ln_final.register_forward_hook(lambda mod, i, o: hidden.__setitem__("h", o))
    _, times["text_encoder"] = timed(lambda: text.encode_text(ids.to(dev)), dev, torch)
    ref["text_hidden"] = hidden["h"].cpu().numpy()
    te = {k: v for k, v in hf_state(text.cpu(), np.float32).items() if k.startswith("text_model.")}
    os.makedirs(os.path.join(sd, "text_encoder"), exist_ok=True)
    st_io.save(os.path.join(sd, "text_encoder", "model.safetensors"), te, {"format": "pt"})
    json.dump(
        {
            "architectures": ["CLIPTextModel"],
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "max_position_embeddings": 77,
            "vocab_size": 49408,
            "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-5,
            "eos_token_id": 2,
            "bos_token_id": 0,
            "pad_token_id": 1,
        },
        open(os.path.join(sd, "text_encoder", "config.json"), "w"),
        indent=2,
    )
    sizes["text_encoder"] = sum(v.size for v in te.values())
    context = torch.from_numpy(ref["text_hidden"][:1]).to(dev)
    text = None  # frees it; not `del`: the timed lambda above still names it

    torch.manual_seed(11)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8).eval()
    perturb(unet, torch)
    unet.save_pretrained(os.path.join(sd, "unet"), safe_serialization=True)
    unet = unet.to(dev)
    g = torch.Generator().manual_seed(12)
    sample = torch.randn(1, 4, a.latent, a.latent, generator=g)
    ref["unet_sample"] = sample.numpy()
    u, times["unet"] = timed(
        lambda: unet(sample.to(dev), torch.tensor([500], device=dev), encoder_hidden_states=context).sample, dev, torch
    )
    ref["unet_out"] = u.cpu().numpy()
    sizes["unet"] = sum(p.numel() for p in unet.parameters())
    unet = None

    torch.manual_seed(13)
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=512,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
    ).eval()
    perturb(vae, torch)
    vae.save_pretrained(os.path.join(sd, "vae"), safe_serialization=True)
    vae = vae.to(dev)
    images = torch.rand(1, 3, 8 * a.latent, 8 * a.latent, generator=g) * 2 - 1
    ref["vae_images"] = images.numpy()
    mean, times["vae_encode"] = timed(lambda: vae.encode(images.to(dev)).latent_dist.mean, dev, torch)
    dec, times["vae_decode"] = timed(lambda: vae.decode(mean).sample, dev, torch)
    ref["vae_mean"], ref["vae_decoded"] = mean.cpu().numpy(), dec.cpu().numpy()
    sizes["vae"] = sum(p.numel() for p in vae.parameters())
    vae = None

    os.makedirs(os.path.join(sd, "scheduler"), exist_ok=True)
    json.dump(SD14_SCHEDULER, open(os.path.join(sd, "scheduler", "scheduler_config.json"), "w"), indent=2)
    shutil.copytree(
        os.path.join(HERE, "..", "test", "fixtures", "clip_tokenizer"),
        os.path.join(sd, "tokenizer"),
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("cases.json"),
    )
    json.dump(
        {
            "_class_name": "StableDiffusionPipeline",
            "_diffusers_version": diffusers.__version__,
            "scheduler": ["diffusers", "PNDMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
        open(os.path.join(sd, "model_index.json"), "w"),
        indent=2,
    )

    # CLIP ViT-B/32 (CLIP similarity), both towers, transformers layout.
    b32 = clip_model(
        model_py,
        torch,
        14,
        embed_dim=512,
        image_resolution=224,
        vision_layers=12,
        vision_width=768,
        vision_patch_size=32,
        context_length=77,
        vocab_size=49408,
        transformer_width=512,
        transformer_heads=8,
        transformer_layers=12,
    ).to(dev)
    pixels = torch.randn(2, 3, 224, 224, generator=g)
    ref["clip_pixels"] = pixels.numpy()
    img, times["clip_b32_image"] = timed(lambda: b32.encode_image(pixels.to(dev)), dev, torch)
    txt, times["clip_b32_text"] = timed(lambda: b32.encode_text(ids.to(dev)), dev, torch)
    ref["clip_image_embeds"], ref["clip_text_embeds"] = img.cpu().numpy(), txt.cpu().numpy()
    cdir = os.path.join(out, "clip_b32")
    os.makedirs(cdir, exist_ok=True)
    st_io.save(os.path.join(cdir, "model.safetensors"), hf_state(b32.cpu(), np.float32), {"format": "pt"})
    json.dump(
        {
            "architectures": ["CLIPModel"],
            "projection_dim": 512,
            "text_config": {
                "hidden_size": 512,
                "intermediate_size": 2048,
                "num_hidden_layers": 12,
                "num_attention_heads": 8,
                "max_position_embeddings": 77,
                "vocab_size": 49408,
                "hidden_act": "quick_gelu",
                "eos_token_id": 2,
            },
            "vision_config": {
                "hidden_size": 768,
                "intermediate_size": 3072,
                "num_hidden_layers": 12,
                "num_attention_heads": 12,
                "image_size": 224,
                "patch_size": 32,
                "hidden_act": "quick_gelu",
            },
        },
        open(os.path.join(cdir, "config.json"), "w"),
        indent=2,
    )
    sizes["clip_b32"] = sum(p.numel() for p in b32.parameters())

    st_io.save(
        os.path.join(out, "expected.safetensors"),
        ref,
        {"device": dev, "torch": torch.__version__, "latent": str(a.latent)},
    )
    json.dump(
        {
            "reference_seconds_per_forward": times,
            "parameters": sizes,
            "device": dev,
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "latent": a.latent,
        },
        open(os.path.join(out, "reference.json"), "w"),
        indent=2,
    )
    print(json.dumps({"times": times, "parameters": sizes}))


if __name__ == "__main__":
    main()
