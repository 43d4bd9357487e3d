#!/usr/bin/env python3
"""PyTorch side of bench/attention.ts: scaled dot-product attention at the same shapes, fp32,
TF32 off, as F.scaled_dot_product_attention (torch >= 2; its fastest kernel for the shape) and as
the explicit matmul → softmax → matmul. One JSON line per shape: {"shape", "sdpa_ms", "explicit_ms"}.

  python3 bench/attention_torch.py --device cuda --shapes 16x4096x4096x40,... [--repeats 20]
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def timed(fn, repeats, dev):
    fn()
    if dev == "cuda":
        torch.cuda.synchronize()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if dev == "cuda":
            torch.cuda.synchronize()
        out.append(1000 * (time.perf_counter() - t0))
    out.sort()
    return out[len(out) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--shapes", required=True, help="BHxTqxTkxD,... (comma separated)")
    ap.add_argument("--repeats", type=int, default=20)
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    g = torch.Generator(device="cpu").manual_seed(0)
    for spec in a.shapes.split(","):
        bh, tq, tk, d = map(int, spec.split("x"))
        q = torch.randn(1, bh, tq, d, generator=g).to(a.device)
        k = torch.randn(1, bh, tk, d, generator=g).to(a.device)
        v = torch.randn(1, bh, tk, d, generator=g).to(a.device)
        explicit = lambda: torch.softmax(q @ k.transpose(-1, -2) * d**-0.5, dim=-1) @ v
        sdpa = (lambda: F.scaled_dot_product_attention(q, k, v)) if hasattr(F, "scaled_dot_product_attention") else None
        print(
            json.dumps(
                {
                    "shape": spec,
                    "sdpa_ms": timed(sdpa, a.repeats, a.device) if sdpa else None,
                    "explicit_ms": timed(explicit, a.repeats, a.device),
                    "torch": torch.__version__,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
