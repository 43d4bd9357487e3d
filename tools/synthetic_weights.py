"""Deterministic stand-in weights that sdd-bench's tests recreate bit for bit in TypeScript
(test/synthetic_weights.ts), so a full-size reference model (Inception: 24 M parameters) can be
checked without committing its weights: only the inputs and the reference outputs are fixtures.

Element i of tensor `name` is murmur3's fmix32 of (i * 0x9E3779B1 + fnv1a32(name)) mod 2^32,
mapped to u in [0, 1) by / 2^32, then to a value by the tensor's rule (see `values`).
"""
import numpy as np

M32 = np.uint64(0xFFFFFFFF)


def fnv1a32(text):
    h = 0x811C9DC5
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def uniform(name, n):
    """n floats in [0, 1), float64, from the tensor's name."""
    x = (np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B1) + np.uint64(fnv1a32(name))) & M32
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x85EBCA6B)) & M32
    x ^= x >> np.uint64(13)
    x = (x * np.uint64(0xC2B2AE35)) & M32
    x ^= x >> np.uint64(16)
    return x.astype(np.float64) / 2.0**32


def values(name, shape, rule):
    """float32 array. rule: ('uniform', a) → U(-a, a); ('around', c, a) → c + U(-a, a);
    ('const', [v...]) → those values (fixed buffers such as StyleGAN2's FIR kernels)."""
    n = int(np.prod(shape)) if len(shape) else 1
    if rule[0] == "const":
        return np.asarray(rule[1], dtype=np.float32).reshape(shape)
    u = uniform(name, n)
    if rule[0] == "uniform":
        v = (2 * u - 1) * rule[1]
    elif rule[0] == "around":
        v = rule[1] + (2 * u - 1) * rule[2]
    else:
        raise ValueError(rule)
    return v.astype(np.float32).reshape(shape)


def through_converter(state, converter, pth_name, rule, out_dir):
    """Saves `state` (a torch state dict) as the published .pth, runs tools/`converter` on it, and
    writes out_dir/weights.json: every converted tensor's name, shape, rule and float32 sha256,
    which the TypeScript side checks its own synthetic file against."""
    import hashlib
    import json
    import os
    import subprocess
    import sys
    import tempfile

    import torch

    import st_io

    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as tmp:
        pth = os.path.join(tmp, pth_name)
        torch.save(state, pth)
        st = os.path.join(tmp, "converted.safetensors")
        subprocess.run([sys.executable, os.path.join(here, converter), pth, st], check=True)
        converted = st_io.load(st)
    tensors = [
        {
            "name": n,
            "shape": list(converted[n].shape),
            "rule": rule(n, list(converted[n].shape)),
            "sha256": hashlib.sha256(converted[n].astype("<f4").tobytes()).hexdigest(),
        }
        for n in sorted(converted)
    ]
    with open(os.path.join(out_dir, "weights.json"), "w") as f:
        rows = ",\n".join(json.dumps(t) for t in tensors)
        f.write(f'{{"generator": "tools/synthetic_weights.py", "tensors": [\n{rows}\n]}}\n')
    return tensors
