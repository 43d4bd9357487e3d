#!/usr/bin/env python3
"""Converts a rosinality/stylegan2-pytorch checkpoint (stylegan2-ffhq-config-f.pt, the file
StyleCLIP and the SDD code load: a pickle {"g_ema": state_dict, "latent_avg": tensor, ...}) to
safetensors for sdd-bench: g_ema's tensors under their own names (noise buffers and FIR kernels
included) and `latent_avg` when the checkpoint has it. The discriminator and the non-EMA
generator are left out.

  python3 tools/convert_stylegan2.py stylegan2-ffhq-config-f.pt stylegan2-ffhq-config-f.safetensors

Needs torch (Debian: apt-get install python3-torch; then /usr/bin/python3).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402


def convert(src, dst):
    import torch

    ckpt = torch.load(src, map_location="cpu")
    if not isinstance(ckpt, dict) or "g_ema" not in ckpt:
        sys.exit(f"{src}: not a rosinality StyleGAN2 checkpoint (no 'g_ema' entry)")
    g = ckpt["g_ema"]
    if "input.input" not in g or "style.1.weight" not in g:
        sys.exit(f"{src}: g_ema is not a rosinality Generator state dict (no input.input / style.1.weight)")
    keep = {k: v.detach().float().numpy() for k, v in g.items()}
    if ckpt.get("latent_avg") is not None:
        keep["latent_avg"] = ckpt["latent_avg"].detach().float().reshape(-1).numpy()
    size = 4 * 2 ** (sum(1 for k in g if k.startswith("to_rgbs.") and k.endswith(".bias")))
    st_io.save(dst, keep, {"source": os.path.basename(src), "format": "rosinality-stylegan2-g_ema", "size": size})
    return keep


if __name__ == "__main__":
    st_io.converter_main(__doc__, convert)
