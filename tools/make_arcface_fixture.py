#!/usr/bin/env python3
"""Makes test/fixtures/arcface/: parity data for sdd-bench's ArcFace IR-SE50 against the reference
model code, TreB1eN/InsightFace_Pytorch's model.py (Backbone(50, 0.6, 'ir_se'), the network of the
model_ir_se50.pth that StyleCLIP and e4e load), run from a checkout, at full size with synthetic
weights (tools/synthetic_weights.py) that the tests recreate in TypeScript. Committed: only

  weights.json           name, shape, rule and float32 sha256 of every tensor, as
                         tools/convert_ir_se50.py writes them from a .pth in the published layout
  expected.safetensors   embeddings [3, 512] (unit norm) of faces [3, 3, 112, 112] in [-1, 1];
                         id_embeddings [1, 512] of id_images [1, 3, 256, 256] through e4e's / StyleCLIP's
                         ID-loss preprocessing (crop [35:223, 32:220], AdaptiveAvgPool2d(112)), and
                         id_grad = d Σ(id_embeddings ⊙ id_probe) / d id_images
                         (faces, id_images, id_probe: synthetic_weights.values(name, shape, uniform 1))

  /usr/bin/python3 tools/make_arcface_fixture.py --insightface PATH_TO_InsightFace_Pytorch
"""
import argparse
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st_io  # noqa: E402
import synthetic_weights as sw  # noqa: E402


def rule(name, shape):
    """He-uniform convolutions and linear layer, BatchNorm near identity, PReLU slopes near 0.25."""
    if len(shape) == 4 or name == "output_layer.3.weight":
        fan_in = int(np.prod(shape[1:]))
        return ["uniform", float(np.sqrt(6.0 / fan_in))]
    if name.endswith("running_var"):
        return ["around", 1.0, 0.2]
    if name.endswith("running_mean") or name.endswith("bias"):
        return ["uniform", 0.1]
    if len(shape) == 1 and name.endswith("weight"):
        # PReLU slopes (input_layer.2, res_layer.2) and BatchNorm scales share the suffix:
        # tell them apart by module index.
        prelu = name in ("input_layer.2.weight",) or name.endswith("res_layer.2.weight")
        if prelu:
            return ["around", 0.25, 0.05]
        # The residual branch's last BatchNorm scaled down, as a trained ResNet's effectively is:
        # at scale 1 the 24 units grow the activations ~1.5× each and float32 rounding differences
        # grow with them (1e-6 at the first unit, O(1) at the last), in any implementation.
        return ["around", 0.1, 0.02] if name.endswith("res_layer.4.weight") else ["around", 1.0, 0.1]
    raise ValueError(name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--insightface", required=True)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "test", "fixtures", "arcface"))
    a = ap.parse_args()
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("insightface_model", os.path.join(a.insightface, "model.py"))
    assert spec is not None and spec.loader is not None, "not a loadable module file"
    model_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model_py)
    rev = (
        subprocess.run(["git", "-C", a.insightface, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        or "unknown"
    )
    net = model_py.Backbone(50, 0.6, "ir_se").eval()
    state = {}
    for k, v in net.state_dict().items():
        state[k] = (
            torch.zeros_like(v)
            if k.endswith("num_batches_tracked")
            else torch.from_numpy(sw.values(k, list(v.shape), rule(k, list(v.shape))))
        )
    net.load_state_dict(state)
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    tensors = sw.through_converter(state, "convert_ir_se50.py", "model_ir_se50.pth", rule, out)

    # Inputs from the synthetic generator too (the tests recreate them): only outputs are committed.
    faces = torch.from_numpy(sw.values("faces", [3, 3, 112, 112], ["uniform", 1.0]))
    with torch.no_grad():
        emb = net(faces)
    # e4e / StyleCLIP IDLoss.extract_feats on 256² images: crop the face region, pool to 112, embed.
    images = torch.from_numpy(sw.values("id_images", [1, 3, 256, 256], ["uniform", 1.0])).requires_grad_(True)
    pool = torch.nn.AdaptiveAvgPool2d((112, 112))
    id_emb = net(pool(images[:, :, 35:223, 32:220]))
    probe = torch.from_numpy(sw.values("id_probe", [1, 512], ["uniform", 1.0]))
    (grad,) = torch.autograd.grad((id_emb * probe).sum(), images)

    st_io.save(
        os.path.join(out, "expected.safetensors"),
        {"embeddings": emb.numpy(), "id_embeddings": id_emb.detach().numpy(), "id_grad": grad.numpy()},
        {
            "reference": f"TreB1eN/InsightFace_Pytorch {rev[:12]} model.py Backbone(50, 0.6, 'ir_se'), "
            f"torch {torch.__version__}, CPU float32"
        },
    )
    print(
        f"{out}: {len(tensors)} tensors, {sum(int(np.prod(t['shape'])) for t in tensors)} values; "
        f"|grad| max {grad.abs().max():.3e}"
    )


if __name__ == "__main__":
    main()
