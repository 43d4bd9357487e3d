"""Unit tests of the SDD twins' building blocks (python/sdd_torch/sdd): the host Adam port against
torch.optim.AdamW (the same update rule, written independently), top-k sparsification, the
LevelsMapper's groups and PixelNorm axes, and the init stream's shape check. The training loops
themselves are compared with the TypeScript in test/torch_sdd.test.ts."""
import unittest

import numpy as np
import torch

from sdd_torch.sdd.adam import HostAdam
from sdd_torch.sdd.guidance import top_k_magnitude
from sdd_torch.sdd.mapper import MapperSettings, apply_mapper, init_params, levels_mapper, param_names

PLAN = {
    "levels": {"coarse": False, "medium": True, "fine": True},
    "pixel_norm": "across_levels",
    "layers": 2,
    "lr_mul": 0.01,
    "step": 0.1,
    "groups": {"coarse": [0, 4], "medium": [4, 6], "fine": [6, 8]},
}
DIM = 8


class HostAdamTest(unittest.TestCase):
    def test_matches_torch_adamw(self) -> None:
        # Same rule as torch.optim.AdamW (decoupled decay, bias-corrected moments, ε after the
        # square root); torch rounds every op to float32, HostAdam computes in float64 and rounds
        # once: measured max |Δw| 1.5e-4 (5 float32 ulps of |w| ≈ 300); allowed 1e-6·max|w| +
        # 1e-4·max|Δw| (3.5e-4).
        g = torch.Generator().manual_seed(3)
        w0 = torch.randn(16, 16, generator=g) * 100
        ours = {"w": w0.clone()}
        ref = torch.nn.Parameter(w0.clone())
        opt = torch.optim.AdamW([ref], lr=5e-3, weight_decay=2e-3)
        adam = HostAdam(5e-3, 2e-3)
        for _ in range(10):
            grad = torch.randn(16, 16, generator=g) * 1e-3
            adam.apply(ours, {"w": grad})
            ref.grad = grad.clone()
            opt.step()
        delta_ours, delta_ref = ours["w"] - w0, ref.detach() - w0
        self.assertLessEqual(
            float((delta_ours - delta_ref).abs().max()),
            1e-6 * float(w0.abs().max()) + 1e-4 * float(delta_ref.abs().max()),
        )
        self.assertEqual(adam.step, 10)

    def test_state_round_trip(self) -> None:
        adam = HostAdam(1e-2, 0.0)
        params = {"a": torch.zeros(3)}
        adam.apply(params, {"a": torch.ones(3)})
        other = HostAdam(1e-2, 0.0)
        other.restore(adam.step, adam.state())
        p2 = {"a": params["a"].clone()}
        adam.apply(params, {"a": torch.ones(3)})
        other.apply(p2, {"a": torch.ones(3)})
        self.assertTrue(torch.equal(params["a"], p2["a"]))


class TopKTest(unittest.TestCase):
    def test_batch_and_per_image(self) -> None:
        g = torch.tensor([[[1.0, -5.0], [2.0, 0.5]], [[-3.0, 4.0], [0.1, 0.2]]])
        kept = top_k_magnitude(g, 2)
        self.assertEqual(sorted(float(x) for x in kept[kept != 0]), [-5.0, 4.0])
        per = top_k_magnitude(g, 1, per_image=True)
        self.assertEqual([float(x) for x in per[per != 0]], [-5.0, 4.0])
        self.assertTrue(torch.equal(top_k_magnitude(g, 100), g))


class MapperTest(unittest.TestCase):
    def settings(self, **over: object) -> MapperSettings:
        return MapperSettings({**PLAN, **over})

    def test_disabled_group_is_zero_and_has_no_params(self) -> None:
        s = self.settings()
        self.assertFalse(any(".coarse." in n for n in param_names(s)))
        noise = np.random.default_rng(0).standard_normal((3, 2, DIM, DIM)).astype(np.float32)
        p = init_params(s, noise, DIM, torch.device("cpu"))
        w = torch.randn(2, 8, DIM)
        m = levels_mapper(p, w, s)
        self.assertEqual(tuple(m.shape), (2, 8, DIM))
        self.assertTrue(torch.equal(m[:, :4], torch.zeros(2, 4, DIM)))
        self.assertTrue(torch.allclose(apply_mapper(p, w, s), w + 0.1 * m))
        # The init: noise / lr_mul for weights (medium is the stream's group 1), zeros for biases.
        self.assertTrue(
            torch.equal(
                p["mapper.medium.1.weight"], torch.from_numpy((noise[1, 1].astype(np.float64) * 100).astype(np.float32))
            )
        )
        self.assertTrue(torch.equal(p["mapper.fine.0.bias"], torch.zeros(DIM)))

    def test_pixel_norm_axes_differ(self) -> None:
        noise = np.random.default_rng(1).standard_normal((3, 2, DIM, DIM)).astype(np.float32)
        w = torch.randn(1, 8, DIM)
        a, b = self.settings(), self.settings(pixel_norm="per_level")
        ma = levels_mapper(init_params(a, noise, DIM, torch.device("cpu")), w, a)
        mb = levels_mapper(init_params(b, noise, DIM, torch.device("cpu")), w, b)
        self.assertFalse(torch.allclose(ma, mb))

    def test_init_shape_checked(self) -> None:
        with self.assertRaisesRegex(ValueError, "mapper_init"):
            init_params(self.settings(), np.zeros((3, 4, DIM, DIM), np.float32), DIM, torch.device("cpu"))


if __name__ == "__main__":
    unittest.main()
