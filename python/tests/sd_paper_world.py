"""The paper world twin (worlds/paper.py) beyond what test/torch_sd.test.ts compares with TS. Run as
part of tests/test_sd.py, which imports this case.
"""
import json
from typing import Any, Dict

import numpy as np
import torch

from sdd_torch.models.sd_config import ConfigError
from sdd_torch.worlds.paper import World
from tests.sd_case import ROOT, SD, Case


class PaperWorld(Case):
    """worlds/paper.py beyond what test/torch_sd.test.ts compares with TS: seeded random weights
    (paper-random: no file), v-prediction, and one-line errors for a bad spec."""

    def specs(self, seed: int) -> Dict[str, Any]:
        configs = ROOT / "datasets" / "paper" / "configs" / "tiny"
        return {
            n: {
                "weights": None,
                "architecture": {"config": json.loads((configs / f"{n}.json").read_text()), "seed": seed},
            }
            for n in ("unet", "vae", "text_encoder", "clip")
        }

    def eps(self, world: World) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        zt = torch.randn(2, *world.latent_shape, generator=g)
        ids = torch.randint(0, 4000, (2, 77), generator=g)
        context, mask = world.text_condition(ids)
        return world.eps(zt, torch.tensor([10.0, 900.0]), context, mask)

    def test_random_weights_are_deterministic_per_seed(self) -> None:
        a, b, c = (World("paper-random", self.specs(s), torch.device("cpu")) for s in (7, 7, 8))
        self.assertEqual((a.image_size, a.latent_shape), (32, (8, 8, 4)))
        self.assertTrue(torch.equal(self.eps(a), self.eps(b)))
        self.assertFalse(torch.equal(self.eps(a), self.eps(c)))
        self.assertFalse(any(p.requires_grad for p in a.unet.parameters()))

    def test_v_prediction_becomes_eps(self) -> None:
        specs = self.specs(7)
        alphas = np.linspace(0.999, 0.01, 1000).tolist()
        specs["unet"]["architecture"] = {
            **specs["unet"]["architecture"],
            "prediction_type": "v_prediction",
            "alphas_cumprod": alphas,
        }
        world_v, world_e = World("paper-random", specs, torch.device("cpu")), World(
            "paper-random", self.specs(7), torch.device("cpu")
        )
        g = torch.Generator().manual_seed(1)
        zt, t = torch.randn(2, 8, 8, 4, generator=g), torch.tensor([10.0, 900.0])
        context, mask = world_e.text_condition(torch.randint(0, 4000, (2, 77), generator=g))
        v = world_e.eps(zt, t, context, mask)
        a = torch.tensor([alphas[10], alphas[900]], dtype=torch.float32).reshape(2, 1, 1, 1)
        want = torch.sqrt(a) * v + torch.sqrt(1 - a) * zt
        self.assertTrue(torch.allclose(world_v.eps(zt, t, context, mask), want, atol=1e-6))

    def test_the_device_check_runs(self) -> None:
        # dist/gpu-check.sh's entry (sd_parity.py --device-check), here on the CPU against itself.
        from tests.sd_parity import device_check

        self.assertEqual(device_check("tiny", "cpu"), 0)

    def test_a_bad_spec_is_one_line(self) -> None:
        specs = self.specs(7)
        del specs["vae"]
        self.assertIn(
            "engine.models lacks vae", self.refused(ValueError, World, "paper-random", specs, torch.device("cpu"))
        )
        specs = self.specs(7)
        specs["unet"]["architecture"]["config"]["new_key"] = 1
        self.assertIn(
            "engine.models.unet.architecture.config: new_key: not a setting this loader implements",
            self.refused(ConfigError, World, "paper-random", specs, torch.device("cpu")),
        )
        specs = self.specs(7)
        specs["clip"] = specs["text_encoder"]
        self.assertIn(
            "a CLIPModel (both towers) is needed",
            self.refused(ConfigError, World, "paper-random", specs, torch.device("cpu")),
        )
        specs = self.specs(7)
        specs["vae"] = {
            "weights": str(SD / "vae" / "diffusion_pytorch_model.safetensors"),
            "sha256": "0" * 64,
            "architecture": {"config": json.loads((SD / "vae" / "config.json").read_text())},
        }
        self.assertIn(
            "the manifest expects 000000000000",
            self.refused(ConfigError, World, "paper-random", specs, torch.device("cpu")),
        )
