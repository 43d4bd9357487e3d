#!/usr/bin/env python3
"""Converts the ArcFace IR-SE50 weights StyleCLIP and e4e use for their identity loss
(model_ir_se50.pth, a PyTorch pickle of TreB1eN/InsightFace_Pytorch's Backbone(50, 0.6, 'ir_se'))
to safetensors for sdd-bench: the same tensor names, BatchNorm's step counters left out.

  python3 tools/convert_ir_se50.py model_ir_se50.pth ir_se50.safetensors

Needs torch (Debian: apt-get install python3-torch; then /usr/bin/python3).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402


def convert(src, dst):
    import torch

    state = torch.load(src, map_location="cpu")
    if not isinstance(state, dict) or "input_layer.0.weight" not in state or "output_layer.3.weight" not in state:
        sys.exit(f"{src}: not an IR-SE50 state dict (no input_layer.0.weight / output_layer.3.weight)")
    keep = {k: v.detach().float().numpy() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    st_io.save(dst, keep, {"source": os.path.basename(src), "format": "insightface-ir-se50"})
    return keep


if __name__ == "__main__":
    st_io.converter_main(__doc__, convert)
