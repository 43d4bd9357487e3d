#!/usr/bin/env python3
"""Converts the PyTorch pickles of a transformers or diffusers model folder (pytorch_model.bin,
diffusion_pytorch_model.bin, or their sharded *.bin.index.json) to safetensors beside them, with the
same tensor names, dtypes (bfloat16 widened to float32, exactly) and shapes (model.safetensors /
diffusion_pytorch_model.safetensors, or shards plus a *.safetensors.index.json). Older Hub revisions
of SD v1-4 and CLIP ship only these.

  python3 tools/convert_bin_to_safetensors.py FOLDER [FOLDER ...]      # e.g. sd/unet sd/vae sd/text_encoder clip

Needs torch (Debian: apt-get install python3-torch; then /usr/bin/python3). Tensors that share
storage are written as separate copies (safetensors has no aliasing). Refuses to overwrite.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

NAMES = {"pytorch_model.bin": "model.safetensors", "diffusion_pytorch_model.bin": "diffusion_pytorch_model.safetensors"}


def load(path):
    import torch

    state = torch.load(path, map_location="cpu")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    bad = [k for k, v in state.items() if not hasattr(v, "numpy")]
    if bad:
        sys.exit(f"{path}: not a plain state dict (non-tensor entries: {', '.join(bad[:4])})")
    # numpy has no bfloat16: such tensors are widened to float32 (exact).
    return {k: (v.float() if v.dtype == torch.bfloat16 else v).detach().contiguous().numpy() for k, v in state.items()}


def convert(folder):
    done = []
    for src, dst in NAMES.items():
        index = os.path.join(folder, src + ".index.json")
        if os.path.exists(os.path.join(folder, src)):
            out = os.path.join(folder, dst)
            if os.path.exists(out):
                sys.exit(f"{out}: exists; not overwritten")
            tensors = load(os.path.join(folder, src))
            st_io.save(out, tensors, {"format": "pt", "converted_from": src})
            done.append(f"{out} ({len(tensors)} tensors)")
        elif os.path.exists(index):
            weight_map = json.load(open(index))["weight_map"]
            new_map = {}
            for shard in sorted(set(weight_map.values())):
                out_shard = shard.replace(".bin", ".safetensors")
                if os.path.exists(os.path.join(folder, out_shard)):
                    sys.exit(f"{os.path.join(folder, out_shard)}: exists; not overwritten")
                tensors = load(os.path.join(folder, shard))
                st_io.save(os.path.join(folder, out_shard), tensors, {"format": "pt", "converted_from": shard})
                new_map.update({k: out_shard for k in tensors})
            if set(new_map) != set(weight_map):
                sys.exit(f"{index}: its weight_map and its shards disagree")
            with open(os.path.join(folder, dst + ".index.json"), "w") as f:
                json.dump({"metadata": {"converted_from": src + ".index.json"}, "weight_map": new_map}, f, indent=2)
            done.append(f"{os.path.join(folder, dst)}.index.json ({len(new_map)} tensors)")
    if not done:
        sys.exit(f"{folder}: no pytorch_model.bin or diffusion_pytorch_model.bin (or a sharded index)")
    return done


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+")
    for folder in ap.parse_args().folders:
        for line in convert(folder):
            print(line)


if __name__ == "__main__":
    main()
