"""Unit tests of the StyleGAN2 and IR-SE50 twins (driven by test/torch_paper_gan.test.ts).

Strict loading as the TS loaders: a converted file missing one of the model's tensors, holding one
more, with a mis-shaped tensor, a wrong FIR buffer or another sha256 is refused with one line
naming it. The generator's architecture is read from the file's shapes (stylegan2.ts
styleGan2ConfigOf); latent_avg is optional. Blocks: a modulated convolution computed as
"scale in, shared kernel, scale out" equals per-sample demodulated kernels (the reference's
grouped form, written here from its definition); the [1, 3, 3, 1] upsampling keeps a constant
image constant; the adaptive pooling bins are arcface.ts adaptivePoolMatrix's. Seeded random
weights (paper-random without files): deterministic per seed, with the TS initialisers' scales.
"""
import math
import pathlib
import shutil
import tempfile
import unittest
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sdd_torch.models import arcface, stylegan2
from sdd_torch.nn import WeightsError
from sdd_torch.safetensors_np import SafetensorsError, save, sha256_file

SMALL = stylegan2.StyleGan2Config(size=16, style_dim=8, n_mlp=2, channels={4: 8, 8: 8, 16: 4})
TINY_STAGES = [(1, 16), (1, 16), (1, 32), (1, 32)]


def random_tensors(model: nn.Module, seed: int) -> Dict[str, np.ndarray]:
    """Every parameter and buffer of `model` (file names and layouts), uniform in [-0.5, 0.5] + 1 for
    running variances."""
    rng = np.random.default_rng(seed)
    out: Dict[str, np.ndarray] = {}
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        v = rng.uniform(-0.5, 0.5, size=tuple(t.shape)).astype(np.float32)
        out[name] = v + 1 if name.endswith("running_var") else v
    return out


def generator_file(seed: int = 1, latent_avg: bool = True) -> Dict[str, np.ndarray]:
    """A converted g_ema at SMALL: every tensor, the FIR buffers, and latent_avg when asked."""
    g = stylegan2.StyleGan2(SMALL, with_latent_avg=latent_avg)
    out = random_tensors(g, seed)
    for k in range(len(g.to_rgbs)):
        out[f"convs.{2 * k}.conv.blur.kernel"] = stylegan2.blur_kernel(4.0)
        out[f"to_rgbs.{k}.upsample.kernel"] = stylegan2.blur_kernel(4.0)
    return out


class Files(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="sdd-paper-gan-"))

    def tearDown(self) -> None:
        shutil.rmtree(self.dir)

    def write(self, tensors: Dict[str, np.ndarray], name: str = "w.safetensors") -> str:
        path = str(self.dir / name)
        save(path, tensors)
        return path

    def refused(self, load: "type[Exception]", fn: object) -> str:
        with self.assertRaises(load) as caught:
            fn()  # type: ignore[operator]
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        return message

    def refused_generator(self, tensors: Dict[str, np.ndarray]) -> str:
        """The one-line WeightsError of loading `tensors` as a StyleGAN2 file."""
        return self.refused(WeightsError, lambda: stylegan2.load_stylegan2(self.write(tensors)))


class StyleGan2Loading(Files):
    def test_the_architecture_is_read_from_the_file(self) -> None:
        g = stylegan2.load_stylegan2(self.write(generator_file()))
        self.assertEqual(g.config, SMALL)
        self.assertEqual((g.levels, g.dim), (6, 8))
        self.assertFalse(g.training)
        self.assertFalse(any(p.requires_grad for p in g.parameters()))
        self.assertIsNotNone(g.latent_avg)
        self.assertEqual(tuple(g.synthesis(torch.zeros(2, 6, 8)).shape), (2, 16, 16, 3))

    def test_latent_avg_is_optional_and_truncation_then_needs_a_centre(self) -> None:
        g = stylegan2.load_stylegan2(self.write(generator_file(latent_avg=False)))
        self.assertIsNone(g.latent_avg)
        w = torch.ones(1, 8)
        self.assertTrue(torch.equal(g.truncate(w, 1.0), w))
        self.assertTrue(torch.allclose(g.truncate(w, 0.5, avg=torch.zeros(8)), w * 0.5))
        self.assertIn("no latent_avg", self.refused(WeightsError, lambda: g.truncate(w, 0.7)))

    def test_a_missing_tensor_is_named(self) -> None:
        t = generator_file()
        del t["convs.2.conv.weight"]
        # The shapes say where the architecture is: the missing kernel is named there.
        self.assertIn("convs.2.conv.weight", self.refused_generator(t))
        t = generator_file()
        del t["convs.1.noise.weight"]
        self.assertIn(
            "has no tensor convs.1.noise.weight",
            self.refused_generator(t),
        )

    def test_an_unused_tensor_is_named(self) -> None:
        t = generator_file()
        t["mystery"] = np.zeros(3, np.float32)
        self.assertIn("tensor mystery is not used", self.refused_generator(t))

    def test_a_mis_shaped_tensor_is_named(self) -> None:
        t = generator_file()
        t["noises.noise_3"] = np.zeros((1, 1, 8, 8), np.float32)
        self.assertIn(
            "noises.noise_3 is [1, 1, 8, 8]",
            self.refused_generator(t),
        )

    def test_a_wrong_fir_buffer_is_refused(self) -> None:
        t = generator_file()
        t["convs.0.conv.blur.kernel"] = stylegan2.blur_kernel(1.0)
        self.assertIn(
            "convs.0.conv.blur.kernel is not the [1, 3, 3, 1] FIR kernel",
            self.refused_generator(t),
        )

    def test_another_file_than_the_manifest_s_is_refused(self) -> None:
        path = self.write(generator_file())
        self.assertIn("sha256", self.refused(SafetensorsError, lambda: stylegan2.load_stylegan2(path, sha256="0" * 64)))
        stylegan2.load_stylegan2(path, sha256=sha256_file(path))

    def test_a_file_that_is_no_generator_is_named_so(self) -> None:
        t = generator_file()
        del t["conv1.conv.weight"]
        self.assertIn(
            "no tensor conv1.conv.weight (not a StyleGAN2 g_ema",
            self.refused_generator(t),
        )

    def test_a_w_plus_of_another_shape_is_refused(self) -> None:
        g = stylegan2.load_stylegan2(self.write(generator_file()))
        self.assertIn(
            "W+ is [5, 8]; this generator takes [6, 8]",
            self.refused(WeightsError, lambda: g.synthesis(torch.zeros(1, 5, 8))),
        )


class RandomWeights(unittest.TestCase):
    def test_seeded_generators_are_deterministic_with_the_ts_initialisers(self) -> None:
        a, b, c = (stylegan2.random_stylegan2(SMALL, s) for s in (5, 5, 6))
        w = torch.randn(2, 6, 8)
        self.assertTrue(torch.equal(a.synthesis(w), b.synthesis(w)))
        self.assertFalse(torch.equal(a.synthesis(w), c.synthesis(w)))
        self.assertIsNone(a.latent_avg)
        self.assertTrue(torch.equal(a.conv1.conv.modulation.bias, torch.ones(8)))
        self.assertTrue(torch.equal(a.to_rgbs[0].bias, torch.zeros(1, 3, 1, 1)))
        self.assertAlmostEqual(float(getattr(a.style, "1").weight.std()), 1 / stylegan2.LR_MLP, delta=20)
        self.assertFalse(any(p.requires_grad for p in a.parameters()))
        avg = stylegan2.mean_latent(a, 256, 1)
        self.assertTrue(torch.equal(avg, stylegan2.mean_latent(b, 256, 1)))
        self.assertEqual(tuple(a.truncate(torch.zeros(1, 8), 0.7, avg).shape), (1, 8))

    def test_config_f_has_rosinality_s_channel_table(self) -> None:
        ch = stylegan2.default_channels(1024)
        self.assertEqual(ch, {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32})
        self.assertEqual(stylegan2.n_latent(stylegan2.StyleGan2Config(1024, 512, 8, ch)), 18)

    def test_seeded_identity_networks_are_deterministic(self) -> None:
        a, b = arcface.random_ir_se50(3, TINY_STAGES), arcface.random_ir_se50(3, TINY_STAGES)
        x = torch.rand(1, 112, 112, 3) * 2 - 1
        self.assertTrue(torch.equal(a(x), b(x)))
        self.assertTrue(torch.equal(a.input_layer.at(2).weight, torch.ones(16)))
        self.assertTrue(torch.equal(a.body[0].res_layer.at(0).running_var, torch.ones(16)))
        self.assertAlmostEqual(float(a.input_layer.at(0).weight.std()), math.sqrt(2 / 27), delta=0.05)


class Blocks(unittest.TestCase):
    def test_modulated_conv_equals_per_sample_demodulated_kernels(self) -> None:
        torch.manual_seed(0)
        for upsample in (False, True):
            m = stylegan2.ModulatedConv(6, 5, 3, 4, demodulate=True, upsample=upsample)
            with torch.no_grad():
                for p in m.parameters():
                    p.uniform_(-1, 1)
            x, w = torch.randn(2, 6, 4, 4), torch.randn(2, 4)
            got = m(x, w)
            # Per sample b: W_b[o, i] = W[o, i] s_b[i] / sqrt(fan_in), divided by its norm over (i, kh, kw).
            s = m.modulation(w)
            for b in range(2):
                k = m.weight[0] / math.sqrt(6 * 9) * s[b][None, :, None, None]
                k = k * torch.rsqrt(k.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
                if upsample:
                    y = F.conv_transpose2d(x[b : b + 1], k.transpose(0, 1), stride=2)
                    y = stylegan2.upfirdn2d(y, stylegan2.fir_kernel(y), 1, (1, 1))
                else:
                    y = F.conv2d(x[b : b + 1], k, padding=1)
                self.assertLess(float((got[b] - y[0]).abs().max()), 1e-5, f"upsample={upsample}")

    def test_the_skip_upsampling_keeps_a_constant_image_constant(self) -> None:
        x = torch.full((1, 3, 4, 4), 0.75)
        y = stylegan2.upfirdn2d(x, stylegan2.fir_kernel(x), 2, (2, 1))
        self.assertEqual(tuple(y.shape), (1, 3, 8, 8))
        # Away from the zero padding: each output sums 4 kernel taps of total weight 4 / 4.
        self.assertTrue(torch.allclose(y[:, :, 2:6, 2:6], torch.full((1, 3, 4, 4), 0.75)))

    def test_adaptive_pooling_bins_are_arcface_ts_s(self) -> None:
        def matrix(n: int, m: int) -> np.ndarray:  # arcface.ts adaptivePoolMatrix
            a = np.zeros((m, n))
            for i in range(m):
                s, e = (i * n) // m, -((-(i + 1) * n) // m)
                a[i, s:e] = 1 / (e - s)
            return a

        for n, m in ((188, 112), (64, 256), (300, 256), (1024, 256)):
            x = torch.randn(1, 2, n, n, dtype=torch.float64)
            want = matrix(n, m) @ x.numpy() @ matrix(n, m).T
            self.assertLess(float(np.abs(F.adaptive_avg_pool2d(x, m).numpy() - want).max()), 1e-12, f"{n} -> {m}")


class IrSe50Loading(Files):
    def tiny(self, seed: int = 2) -> Dict[str, np.ndarray]:
        return random_tensors(arcface.IrSe50(TINY_STAGES), seed)

    def load(self, t: Dict[str, np.ndarray], sha256: Optional[str] = None) -> arcface.IrSe50:
        return arcface.load_ir_se50(self.write(t), sha256=sha256, stages=TINY_STAGES)

    def test_embeddings_are_unit_and_the_id_loss_path_is_pool_crop_pool(self) -> None:
        net = self.load(self.tiny())
        self.assertFalse(net.training)
        self.assertFalse(any(p.requires_grad for p in net.parameters()))
        x = torch.rand(2, 256, 256, 3) * 2 - 1
        e = net.id_embed(x)
        self.assertTrue(torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-6))
        crop = F.adaptive_avg_pool2d(x.permute(0, 3, 1, 2)[:, :, 35:223, 32:220], 112)
        self.assertTrue(torch.allclose(e, net.forward_nchw(crop), atol=1e-6))
        self.assertTrue(torch.allclose(net.embed(x * 0.5 + 0.5), e, atol=1e-6))

    def test_a_missing_tensor_is_named(self) -> None:
        t = self.tiny()
        del t["body.2.res_layer.5.fc1.weight"]
        self.assertIn("has no tensor body.2.res_layer.5.fc1.weight", self.refused(WeightsError, lambda: self.load(t)))

    def test_an_unused_tensor_is_named(self) -> None:
        t = self.tiny()
        t["body.0.shortcut_layer.0.weight"] = np.zeros((16, 16, 1, 1), np.float32)
        self.assertIn(
            "tensor body.0.shortcut_layer.0.weight is not used", self.refused(WeightsError, lambda: self.load(t))
        )

    def test_a_file_of_other_stages_is_refused(self) -> None:
        path = self.write(self.tiny())
        message = self.refused(WeightsError, lambda: arcface.load_ir_se50(path))
        self.assertIn(path, message)

    def test_another_file_than_the_manifest_s_is_refused(self) -> None:
        self.assertIn("sha256", self.refused(SafetensorsError, lambda: self.load(self.tiny(), sha256="f" * 64)))


if __name__ == "__main__":
    unittest.main()
