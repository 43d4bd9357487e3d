"""What the core tests share (tests/test_core.py, tests/core_contract.py): a small manifest as the
harness writes it, its inputs, a contract folder in a temporary directory, the trivial test twin
that the run and worker tests register, and `python -m sdd_torch` as a process.
"""
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from sdd_torch import contract
from sdd_torch.contract import RunContext

PYTHON_DIR = str(Path(__file__).resolve().parent.parent)
M, H = 3, 4
TEST_METHOD = "core_test"
TEST_MODULE = "sdd_torch_core_test_method"


def manifest(**over: Any) -> Dict[str, Any]:
    """A manifest as the harness writes it for an engine: torch run (small shapes)."""
    image = [M, H, H, 3]
    m: Dict[str, Any] = {
        "contract": 1,
        "method": TEST_METHOD,
        "run_id": "abc123def456",
        "seed": 5,
        "params": {"behaviour": "ok", "steps": 4},
        "world": {
            "name": "toyfaces",
            "image_size": H,
            "files": {},
            "fingerprint": {},
            "wplus": None,
            "from_codes": False,
        },
        "prompt": {
            "id": "hair_color:black->white",
            "text": "white hair",
            "source_text": "black hair",
            "attribute": "hair_color",
            "source": "black",
            "target": "white",
            "group": "hair",
            "token_ids": None,
        },
        "inputs": {
            "sources": {"file": "sources.npy", "shape": image, "dtype": "float32"},
            "source_codes": None,
            "train": None,
            "train_codes": None,
            "noise": {"edit": {"file": "noise_edit.npy", "shape": image, "dtype": "float32", "rng_seed": 1}},
        },
        "outputs": {"edited": {"file": "edited.npy", "shape": image, "dtype": "float32"}, "originals": None},
        "engine": {
            "name": "torch",
            "precision": "fp32",
            "device": "cpu",
            "models": {},
            "tokens": {},
            "plan": {"gain": 0.5},
        },
    }
    m.update(over)
    return m


SOURCES = np.linspace(0, 1, M * H * H * 3, dtype=np.float32).reshape(M, H, H, 3)
NOISE = np.random.default_rng(0).standard_normal((M, H, H, 3)).astype(np.float32)


def make_contract(root: Path, **over: Any) -> Path:
    return contract.write_inputs(root / "contract", manifest(**over), {"sources.npy": SOURCES, "noise_edit.npy": NOISE})


def trivial_run(ctx: RunContext) -> None:
    """The test twin: a 'training' curve with checkpoints, then edited = clip(x + gain·noise)."""
    behaviour = ctx.params["behaviour"]
    if behaviour == "oom":
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 1.00 GiB total capacity)")
    if behaviour == "boom":
        raise ValueError("bad value\nsecond line")
    if behaviour == "real_oom":  # 1 PiB on the device: the allocator's own error
        torch.empty(2**50, dtype=torch.uint8, device=ctx.device)
    if behaviour == "gpu":  # 256 MiB held on the device, for the peak
        block = torch.ones(2**26, device=ctx.device)
        ctx.env_extra["block_sum"] = float(block.sum())
    steps = ctx.params["steps"]
    done = ctx.load_checkpoint()
    start = done[0] if done else 0
    t0 = ctx.now()
    for k in range(start, steps):
        ctx.metric(k, loss=float("nan") if behaviour == "nan" and k == 2 else 1.0 / (k + 1))
        ctx.save_checkpoint(k + 1, {"w": np.full(3, k, np.float32)}, {"seed": ctx.seed})
        ctx.progress(k + 1, steps + 1, "train")
    tau_train = ctx.now() - t0
    x = ctx.input("sources")
    assert x is not None
    edited = np.clip(x + ctx.plan["gain"] * ctx.noise("edit"), 0, 1)
    ctx.write_edited(torch.from_numpy(edited))
    ctx.progress(steps + 1, steps + 1, "edit")
    ctx.env_extra["draws"] = float(torch.rand(1)[0])  # torch's seeded stream, for the seed check
    ctx.write_timing(tau_train, (ctx.now() - t0 - tau_train) / M)


class TempDir(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="sdd-torch-core-")
        self.root = Path(self._tmp.name)

    def tearDown(self) -> None:
        self._tmp.cleanup()

    def ctx(self, **over: Any) -> RunContext:
        return RunContext(make_contract(self.root, **over))

    def out(self, name: str) -> Path:
        return self.root / "contract" / "out" / name


def module_cli(
    args: List[str], stdin: Optional[str] = None, env: Optional[Dict[str, str]] = None, code: str = ""
) -> "subprocess.CompletedProcess[str]":
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "sdd_torch", *args]
    return subprocess.run(
        cmd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": PYTHON_DIR, **(env or {})},
    )
