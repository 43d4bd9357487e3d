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
import sys
import time
from typing import Any, Callable, Dict, Tuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st_io  # noqa: E402
from make_clip_fixture import hf_state  # noqa: E402
from make_sd_fixture import perturb, write_pipeline  # noqa: E402


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


# The text towers, (width, heads, layers) as text_config takes them: CLIP ViT-L/14's (SD v1's text
# encoder) and CLIP ViT-B/32's.
SD_TEXT = (768, 12, 12)
B32_TEXT = (512, 8, 12)


def clip_model(
    model_py: Any, torch: Any, seed: int, embed: int, image: int, vision: Tuple[int, int], text: Tuple[int, int, int]
) -> Any:
    """openai/CLIP's CLIP with seeded weights off their trivial init: `embed` wide embeddings of
    `image`² images; vision = (layers, width), text = (width, heads, layers). Both CLIPs here share
    patch 32, 77 tokens and CLIP's vocabulary."""
    torch.manual_seed(seed)
    (vision_layers, vision_width), (width, heads, layers) = vision, text
    m = model_py.CLIP(
        embed_dim=embed,
        image_resolution=image,
        vision_layers=vision_layers,
        vision_width=vision_width,
        vision_patch_size=32,
        context_length=77,
        vocab_size=49408,
        transformer_width=width,
        transformer_heads=heads,
        transformer_layers=layers,
    )
    perturb(m, torch, "ln")  # openai/CLIP names its LayerNorms ln_*
    return m.eval()


def text_config(width: int, heads: int, layers: int) -> Dict[str, Any]:
    """The keys of a transformers CLIP text config that both files here write, as CLIP sizes them."""
    return {
        "hidden_size": width,
        "intermediate_size": 4 * width,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "max_position_embeddings": 77,
        "vocab_size": 49408,
        "hidden_act": "quick_gelu",
    }


class Parity:
    """What the parts below share: torch, the device, the seeded input stream, the token ids, and what
    they record (reference tensors, seconds per forward, parameter counts)."""

    def __init__(self, torch: Any, dev: str, ids: Any) -> None:
        self.torch, self.dev, self.ids = torch, dev, ids
        self.g = torch.Generator().manual_seed(12)
        self.ref: Dict[str, Any] = {"input_ids": ids.numpy()}
        self.times: Dict[str, float] = {}
        self.sizes: Dict[str, int] = {}

    def timed(self, name: str, fn: Callable[[], Any]) -> Any:
        out, self.times[name] = timed(fn, self.dev, self.torch)
        return out


def sd_text_encoder(p: Parity, model_py: Any, sd: str) -> Any:
    """SD v1's text encoder: CLIP ViT-L/14's text tower (vision tower kept tiny: not part of SD); the
    context (its first prompt's hidden states) on the device."""
    torch, dev = p.torch, p.dev
    text = clip_model(model_py, torch, 10, 768, 32, vision=(1, 64), text=SD_TEXT).to(dev)
    hidden: Dict[str, Any] = {}
    text.ln_final.register_forward_hook(lambda mod, i, o: hidden.__setitem__("h", o))
    p.timed("text_encoder", lambda: text.encode_text(p.ids.to(dev)))
    p.ref["text_hidden"] = hidden["h"].cpu().numpy()
    te = {k: v for k, v in hf_state(text.cpu(), np.float32).items() if k.startswith("text_model.")}
    os.makedirs(os.path.join(sd, "text_encoder"), exist_ok=True)
    st_io.save(os.path.join(sd, "text_encoder", "model.safetensors"), te, {"format": "pt"})
    config = {
        "architectures": ["CLIPTextModel"],
        **text_config(*SD_TEXT),
        "layer_norm_eps": 1e-5,
        "eos_token_id": 2,
        "bos_token_id": 0,
        "pad_token_id": 1,
    }
    json.dump(config, open(os.path.join(sd, "text_encoder", "config.json"), "w"), indent=2)
    p.sizes["text_encoder"] = sum(v.size for v in te.values())
    return torch.from_numpy(p.ref["text_hidden"][:1]).to(dev)


def sd_unet(p: Parity, UNet2DConditionModel: Any, sd: str, latent: int, context: Any) -> None:
    """SD v1-4's UNet at its published size, on one latent of side `latent`."""
    torch, dev = p.torch, p.dev
    torch.manual_seed(11)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8).eval()
    perturb(unet, torch)
    unet.save_pretrained(os.path.join(sd, "unet"), safe_serialization=True)
    unet = unet.to(dev)
    sample = torch.randn(1, 4, latent, latent, generator=p.g)
    p.ref["unet_sample"] = sample.numpy()
    u = p.timed(
        "unet", lambda: unet(sample.to(dev), torch.tensor([500], device=dev), encoder_hidden_states=context).sample
    )
    p.ref["unet_out"] = u.cpu().numpy()
    p.sizes["unet"] = sum(q.numel() for q in unet.parameters())


def sd_vae(p: Parity, AutoencoderKL: Any, sd: str, latent: int) -> None:
    """SD v1-4's VAE at its published size, on one image of side 8 × `latent`."""
    torch, dev = p.torch, p.dev
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
    images = torch.rand(1, 3, 8 * latent, 8 * latent, generator=p.g) * 2 - 1
    p.ref["vae_images"] = images.numpy()
    mean = p.timed("vae_encode", lambda: vae.encode(images.to(dev)).latent_dist.mean)
    dec = p.timed("vae_decode", lambda: vae.decode(mean).sample)
    p.ref["vae_mean"], p.ref["vae_decoded"] = mean.cpu().numpy(), dec.cpu().numpy()
    p.sizes["vae"] = sum(q.numel() for q in vae.parameters())


def clip_b32(p: Parity, model_py: Any, cdir: str) -> None:
    """CLIP ViT-B/32 (CLIP similarity), both towers, transformers layout."""
    torch, dev = p.torch, p.dev
    b32 = clip_model(model_py, torch, 14, 512, 224, vision=(12, 768), text=B32_TEXT).to(dev)
    pixels = torch.randn(2, 3, 224, 224, generator=p.g)
    p.ref["clip_pixels"] = pixels.numpy()
    img = p.timed("clip_b32_image", lambda: b32.encode_image(pixels.to(dev)))
    txt = p.timed("clip_b32_text", lambda: b32.encode_text(p.ids.to(dev)))
    p.ref["clip_image_embeds"], p.ref["clip_text_embeds"] = img.cpu().numpy(), txt.cpu().numpy()
    os.makedirs(cdir, exist_ok=True)
    st_io.save(os.path.join(cdir, "model.safetensors"), hf_state(b32.cpu(), np.float32), {"format": "pt"})
    config = {
        "architectures": ["CLIPModel"],
        "projection_dim": 512,
        "text_config": {**text_config(*B32_TEXT), "eos_token_id": 2},
        "vision_config": {
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "image_size": 224,
            "patch_size": 32,
            "hidden_act": "quick_gelu",
        },
    }
    json.dump(config, open(os.path.join(cdir, "config.json"), "w"), indent=2)
    p.sizes["clip_b32"] = sum(q.numel() for q in b32.parameters())


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

    tok = json.load(open(os.path.join(HERE, "..", "test", "fixtures", "clip_tokenizer", "cases.json")))
    p = Parity(torch, dev, torch.tensor([c["input_ids"] for c in tok["cases"][1:3]], dtype=torch.int64))
    context = sd_text_encoder(p, model_py, sd)
    sd_unet(p, UNet2DConditionModel, sd, a.latent, context)
    sd_vae(p, AutoencoderKL, sd, a.latent)
    write_pipeline(sd, diffusers.__version__, "PNDMScheduler", {})
    clip_b32(p, model_py, os.path.join(out, "clip_b32"))

    st_io.save(
        os.path.join(out, "expected.safetensors"),
        p.ref,
        {"device": dev, "torch": torch.__version__, "latent": str(a.latent)},
    )
    json.dump(
        {
            "reference_seconds_per_forward": p.times,
            "parameters": p.sizes,
            "device": dev,
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "latent": a.latent,
        },
        open(os.path.join(out, "reference.json"), "w"),
        indent=2,
    )
    print(json.dumps({"times": p.times, "parameters": p.sizes}))


if __name__ == "__main__":
    main()
