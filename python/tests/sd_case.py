"""What the SD twin tests share (tests/test_sd.py, tests/sd_paper_world.py): the fixture folders,
the tolerance (stated in test_sd.py's docstring), and a TestCase with a temporary folder, a bounded
comparison, copies of a model folder with config keys changed, and one-line refusals.
"""
import json
import os
import pathlib
import shutil
import tempfile
import unittest
from typing import Any, Dict

import numpy as np
import torch

from sdd_torch.safetensors_np import read

ROOT = pathlib.Path(__file__).resolve().parents[2]
SD = ROOT / "test" / "fixtures" / "sd_tiny"
CLIP = ROOT / "test" / "fixtures" / "clip_tiny"
# The TS tests' bound on the same fixtures (test/parity.ts assertClose default).
REL = 1e-4
VERBOSE = os.environ.get("SDD_VERBOSE") == "1"


def expected(name: str = "expected.safetensors", folder: pathlib.Path = SD) -> Dict[str, np.ndarray]:
    return read(str(folder / name))[0]


class Case(unittest.TestCase):
    def setUp(self) -> None:
        torch.set_grad_enabled(False)
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="sdd-sd-"))

    def tearDown(self) -> None:
        shutil.rmtree(self.dir)
        torch.set_grad_enabled(True)

    def close(self, what: str, got: torch.Tensor, want: np.ndarray) -> None:
        g = got.detach().numpy()
        self.assertEqual(g.shape, want.shape, what)
        diff, ref = float(np.abs(g - want).max()), float(np.abs(want).max())
        if VERBOSE:
            print(f"{what}: max |Δ| {diff:.2e} (max |ref| {ref:.3f}, relative {diff / ref:.1e})")
        self.assertLessEqual(diff, REL * ref, f"{what}: max |Δ| {diff} > {REL} × max |ref| {ref}")

    def copy(self, folder: pathlib.Path, changes: Dict[str, Any]) -> str:
        """A copy of a model folder with some config.json keys changed (None values kept as null)."""
        dst = self.dir / f"{folder.name}-{len(list(self.dir.iterdir()))}"
        shutil.copytree(folder, dst)
        cfg = json.loads((dst / "config.json").read_text())
        (dst / "config.json").write_text(json.dumps({**cfg, **changes}))
        return str(dst)

    def refused(self, exc: Any, fn: Any, *args: Any) -> str:
        with self.assertRaises(exc) as caught:
            fn(*args)
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        return message
