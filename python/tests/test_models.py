"""Unit tests of the zoo twins' loading and building blocks (driven by test/torch_models.test.ts).

Strict loading: a weights file missing one of the model's tensors, holding one more, with a
mis-shaped tensor or another sha256 is refused with one line naming it. Blocks: the TS padding
rule of conv2d, nearest 2x upsampling, and the empty-prompt mask rule of text_condition.
"""
import os
import pathlib
import shutil
import tempfile
import unittest
from typing import Any, Dict

import numpy as np
import torch
import torch.nn.functional as F

from sdd_torch.models import build, zoo_specs
from sdd_torch.nn import Conv2d, WeightsError, upsample2x
from sdd_torch.safetensors_np import SafetensorsError, read, save, sha256_file

ZOO = pathlib.Path(
    os.environ.get("SDD_ZOO", pathlib.Path(__file__).resolve().parents[2] / "datasets" / "toyfaces" / "zoo")
)


class StrictLoading(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="sdd-models-"))
        self.spec: Dict[str, Any] = zoo_specs(ZOO, ["idnet"])["idnet"]
        self.tensors, _ = read(self.spec["weights"])

    def tearDown(self) -> None:
        shutil.rmtree(self.dir)

    def rewritten(self, tensors: Dict[str, np.ndarray]) -> Dict[str, Any]:
        """The spec of a copy of idnet's weights holding `tensors` (with that file's sha256)."""
        path = str(self.dir / "weights.safetensors")
        save(path, tensors)
        return {**self.spec, "weights": path, "sha256": sha256_file(path)}

    def refused(self, spec: Dict[str, Any]) -> str:
        with self.assertRaises((WeightsError, SafetensorsError)) as caught:
            build("idnet", spec)
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        return message

    def test_the_shipped_file_loads_frozen_in_eval_mode(self) -> None:
        model = build("idnet", self.spec)
        self.assertFalse(model.training)
        self.assertFalse(any(p.requires_grad for p in model.parameters()))

    def test_a_missing_tensor_is_named(self) -> None:
        del self.tensors["stage1.conv2.weight"]
        self.assertIn("has no tensor stage1.conv2.weight", self.refused(self.rewritten(self.tensors)))

    def test_an_unused_tensor_is_named(self) -> None:
        self.tensors["stage9.conv.weight"] = np.zeros((3, 3, 1, 1), np.float32)
        self.assertIn("stage9.conv.weight is not used by the model", self.refused(self.rewritten(self.tensors)))

    def test_a_wrong_shape_is_named(self) -> None:
        self.tensors["embed.bias"] = np.zeros(7, np.float32)
        self.assertIn("embed.bias is [7]", self.refused(self.rewritten(self.tensors)))

    def test_another_file_than_the_manifest_names_is_refused(self) -> None:
        spec = self.rewritten(self.tensors)
        self.assertIn("sha256", self.refused({**spec, "sha256": "0" * 64}))


class Blocks(unittest.TestCase):
    def test_conv_padding_is_the_ts_rule(self) -> None:
        # TS pads (k-1)>>1 before and k>>1 after, 'same' at stride 1 and explicitly at stride 2.
        torch.manual_seed(0)
        x = torch.randn(1, 2, 9, 9)
        for k, stride in ((3, 1), (3, 2), (2, 1), (4, 2), (1, 1)):
            conv = Conv2d(2, 3, k, stride)
            lo, hi = (k - 1) >> 1, k >> 1
            ref = F.conv2d(F.pad(x, (lo, hi, lo, hi)), conv.weight, conv.bias, stride=stride)
            self.assertTrue(torch.equal(conv(x), ref), f"k={k} stride={stride}")

    def test_upsample_repeats_each_pixel(self) -> None:
        x = torch.arange(6.0).reshape(1, 1, 2, 3)
        self.assertTrue(torch.equal(upsample2x(x), x.repeat_interleave(2, 2).repeat_interleave(2, 3)))

    def test_the_empty_prompt_attends_to_every_position(self) -> None:
        clip = build("clip", zoo_specs(ZOO, ["clip"])["clip"])
        ids = torch.zeros(2, clip.tokens, dtype=torch.int64)
        ids[0, :3] = torch.tensor([5, 6, 7])
        _, mask = clip.text_condition(ids)
        self.assertEqual(mask[0].tolist(), [1.0] * 3 + [0.0] * (clip.tokens - 3))
        self.assertEqual(mask[1].tolist(), [1.0] * clip.tokens)


if __name__ == "__main__":
    unittest.main()
