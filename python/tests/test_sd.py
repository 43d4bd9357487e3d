"""The SD twins (python/sdd_torch/models/sd_unet.py, sd_vae.py, clip_text.py) against the upstream
reference outputs the committed fixtures hold, and their strictness (driven by test/torch_sd.test.ts).

References: test/fixtures/sd_tiny/expected.safetensors and variants.safetensors (diffusers v0.31.0,
tools/make_sd_fixture.py), test/fixtures/clip_tiny/expected.safetensors (openai/CLIP,
tools/make_clip_fixture.py); tiny random float16 weights, references computed in float32 on the
same rounded values.

Tolerance: max |Δ| ≤ 1e-4 · max |reference| per output, the bound the TS tests of the same
fixtures use (test/sd_models.test.ts, test/clip.test.ts). Measured on this machine's CPU
(torch 1.13, float32): ≤ 3.2e-6 absolute, ≤ 2.6e-6 relative (VAE decode), see the diagnostics
printed with SDD_VERBOSE=1.

The paper world twin (tests/sd_paper_world.py): seeded random weights deterministic per seed,
v-prediction, bad specs.

Strictness: every config key is implemented or refused in one line naming the file and key (the
same cases as the TS tests); a missing, unexpected or mis-shaped tensor is one line naming it.
"""
import pathlib
import unittest
from typing import Any, Dict, List, Tuple

import numpy as np
import torch

from sdd_torch.models.clip_text import load_clip
from sdd_torch.models.sd_config import ConfigError
from sdd_torch.models.sd_unet import load_unet
from sdd_torch.models.sd_vae import load_vae
from sdd_torch.nn import WeightsError
from sdd_torch.safetensors_np import read, save
from tests.sd_case import CLIP, SD, Case, expected
from tests.sd_paper_world import PaperWorld

# The paper world case runs with this module's own.
__all__ = ["Upstream", "Strictness", "PaperWorld"]


class Upstream(Case):
    """The twins against diffusers' and openai/CLIP's own outputs."""

    def test_unet_sd1_layout(self) -> None:
        ref = expected()
        u = load_unet(str(SD / "unet"))
        self.assertFalse(u.training or any(p.requires_grad for p in u.parameters()))
        args = (torch.from_numpy(ref["unet_sample"]), torch.from_numpy(ref["unet_t"]), torch.from_numpy(ref["context"]))
        self.close("unet", u(*args), ref["unet_out"])

    def test_unet_sd2_style_linear_projection_per_block_heads(self) -> None:
        ref = expected()
        u = load_unet(str(SD / "unet_linear"))
        self.assertTrue(u.config.linear_projection)
        self.assertEqual(u.config.heads, [2, 4])
        self.close(
            "unet_linear",
            u(torch.from_numpy(ref["unet_sample"]), torch.from_numpy(ref["unet_t"]), torch.from_numpy(ref["context"])),
            ref["unet_linear_out"],
        )

    def test_unet_time_embedding_activations_and_center_input(self) -> None:
        ref, variants = expected(), expected("variants.safetensors")
        args = (torch.from_numpy(ref["unet_sample"]), torch.from_numpy(ref["unet_t"]), torch.from_numpy(ref["context"]))
        cases: Dict[str, Dict[str, Any]] = {
            "unet_act_out": {},
            "unet_act_mish_gelu_out": {
                "timestep_post_act": "mish",
                "time_embedding_act_fn": "gelu",
                "center_input_sample": True,
            },
            "unet_act_relu_swish_out": {"timestep_post_act": "relu", "time_embedding_act_fn": "swish"},
        }
        for name, changes in cases.items():
            u = load_unet(self.copy(SD / "unet_act", changes))
            self.assertEqual(u.config.time_embed_dim, 48)
            self.close(name, u(*args), variants[name])
        # Without the activations the output is far off: the keys matter.
        plain = load_unet(self.copy(SD / "unet_act", {"timestep_post_act": None, "time_embedding_act_fn": None}))
        off = float(np.abs(plain(*args).numpy() - variants["unet_act_out"]).max())
        self.assertGreater(off, 1e-3 * float(np.abs(variants["unet_act_out"]).max()))

    def test_vae_encode_and_decode(self) -> None:
        ref = expected()
        v = load_vae(str(SD / "vae"))
        mean, _ = v.encode_moments(torch.from_numpy(ref["vae_images"]))
        self.close("vae mean", mean, ref["vae_mean"])
        self.close("vae decode", v.decode_raw(torch.from_numpy(ref["vae_mean"])), ref["vae_decoded"])

    def test_vae_older_attention_names_load_and_both_at_once_are_refused(self) -> None:
        ref = expected()
        folder = pathlib.Path(self.copy(SD / "vae", {}))
        file = str(folder / "diffusion_pytorch_model.safetensors")
        tensors = read(file)[0]
        names = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
        old: Dict[str, np.ndarray] = {}
        for k, t in tensors.items():
            for new, was in names.items():
                k = k.replace(f".attentions.0.{new}.", f".attentions.0.{was}.")
            old[k] = t.astype(np.float32)
        self.assertIn("encoder.mid_block.attentions.0.query.weight", old)
        save(file, old)
        mean, _ = load_vae(str(folder)).encode_moments(torch.from_numpy(ref["vae_images"]))
        self.close("vae mean (old names)", mean, ref["vae_mean"])
        old["encoder.mid_block.attentions.0.to_q.weight"] = tensors["encoder.mid_block.attentions.0.to_q.weight"]
        save(file, old)
        message = self.refused(WeightsError, load_vae, str(folder))
        self.assertRegex(
            message,
            r"encoder\.mid_block\.attentions\.0\.(query|to_q)\.weight and .* "
            r"are both encoder\.mid_block\.attentions\.0\.to_q\.weight",
        )

    def test_clip_model_both_towers(self) -> None:
        ref = expected(folder=CLIP)
        c = load_clip(str(CLIP))
        ids = torch.from_numpy(ref["input_ids"])
        self.close("last_hidden_state", c.text_hidden(ids), ref["last_hidden_state"])
        self.close("text_embeds", c.text_embeds(ids), ref["text_embeds"])
        self.close(
            "image_embeds",
            c.image_embeds(torch.from_numpy(ref["pixel_values"]).permute(0, 2, 3, 1)),
            ref["image_embeds"],
        )
        self.close("logit_scale", c.logit_scale.reshape(()), ref["logit_scale"])

    def test_clip_text_model_sd_layout_and_transformers_5_layout(self) -> None:
        ref = expected(folder=CLIP)
        ids = torch.from_numpy(ref["input_ids"])
        self.close(
            "text_encoder hidden", load_clip(str(SD / "text_encoder")).text_hidden(ids), ref["last_hidden_state"]
        )
        folder = pathlib.Path(self.copy(SD / "text_encoder", {"dtype": "float16", "transformers_version": "5.0.0"}))
        file = str(folder / "model.safetensors")
        tensors = read(file)[0]
        stripped = {k[len("text_model.") :]: v for k, v in tensors.items()}
        self.assertIn("final_layer_norm.weight", stripped)
        save(file, stripped)
        self.close(
            "text_encoder hidden (unprefixed)", load_clip(str(folder)).text_hidden(ids), ref["last_hidden_state"]
        )
        stripped["text_model.final_layer_norm.weight"] = tensors["text_model.final_layer_norm.weight"]
        save(file, stripped)
        self.assertRegex(
            self.refused(WeightsError, load_clip, str(folder)),
            r"model\.safetensors: (text_model\.)?final_layer_norm\.weight and (text_model\.)?final_layer_norm\.weight "
            r"are both text_model\.final_layer_norm\.weight",
        )


class Strictness(Case):
    def test_every_unet_config_key_is_implemented_or_refused_in_one_line(self) -> None:
        refused: List[Tuple[Dict[str, Any], str]] = [
            (
                {"timestep_post_act": "tanh"},
                r'config\.json: timestep_post_act "tanh" is not supported '
                r'\(supported: null, silu, swish, mish, gelu, relu\)',
            ),
            ({"time_embedding_act_fn": 3}, r"config\.json: time_embedding_act_fn 3 is not supported"),
            ({"time_embedding_dim": "wide"}, r"config\.json: time_embedding_dim must be a number"),
            (
                {"new_setting_from_2027": 1},
                r"config\.json: new_setting_from_2027: not a setting this loader implements \(1\); "
                r"refused rather than ignored",
            ),
            ({"norm_num_groups": None}, r"config\.json: norm_num_groups must be a number \(got null\)"),
            ({"flip_sin_to_cos": None}, r"config\.json: flip_sin_to_cos must be true or false \(got null\)"),
            ({"act_fn": "gelu"}, r'config\.json: act_fn "gelu" is not supported \(supported: "silu", "swish"\)'),
            ({"attention_type": "gated"}, r'config\.json: attention_type "gated" is not supported'),
            ({"class_embeddings_concat": True}, r"config\.json: class_embeddings_concat true is not supported"),
            ({"num_class_embeds": 10}, r"config\.json: num_class_embeds 10 is not supported"),
            ({"encoder_hid_dim_type": "text_proj"}, r'config\.json: encoder_hid_dim_type "text_proj" is not supported'),
            (
                {"reverse_transformer_layers_per_block": [[1], [1]]},
                r"config\.json: reverse_transformer_layers_per_block \[\[1\],\[1\]\] is not supported",
            ),
        ]
        for changes, pattern in refused:
            self.assertRegex(self.refused(ConfigError, load_unet, self.copy(SD / "unet_act", changes)), pattern)
        # Keys documented as irrelevant to inference load whatever their value.
        load_unet(
            self.copy(
                SD / "unet_act",
                {
                    "dropout": 0.3,
                    "resnet_out_scale_factor": 2,
                    "cross_attention_norm": "group_norm",
                    "_name_or_path": "x",
                    "act_fn": "Swish",
                },
            )
        )

    def test_vae_config_keys(self) -> None:
        self.assertRegex(
            self.refused(ConfigError, load_vae, self.copy(SD / "vae", {"latents_mean": [0, 0, 0, 0]})),
            r"config\.json: latents_mean \[0,0,0,0\] is not supported",
        )
        self.assertRegex(
            self.refused(ConfigError, load_vae, self.copy(SD / "vae", {"use_tiling": True})),
            r"config\.json: use_tiling: not a setting this loader implements",
        )
        load_vae(self.copy(SD / "vae", {"sample_size": 1024, "force_upcast": False}))

    def test_clip_config_keys(self) -> None:
        self.assertRegex(
            self.refused(ConfigError, load_clip, self.copy(SD / "text_encoder", {"rope_theta": 1e4})),
            r"config\.json: rope_theta: not a setting this loader implements \(10000\.0\); refused rather than ignored",
        )
        self.assertRegex(
            self.refused(ConfigError, load_clip, self.copy(SD / "text_encoder", {"hidden_act": "relu"})),
            r"config\.json: hidden_act 'relu' is not supported",
        )
        self.assertRegex(
            self.refused(ConfigError, load_clip, self.copy(SD / "text_encoder", {"pruned_heads": {"0": [1]}})),
            r"pruned_heads .*: pruned attention heads are not supported",
        )

    def test_a_missing_an_unexpected_and_a_mis_shaped_tensor_are_named_in_one_line(self) -> None:
        folder = pathlib.Path(self.copy(SD / "unet", {}))
        file = str(folder / "diffusion_pytorch_model.safetensors")
        tensors = read(file)[0]
        del tensors["mid_block.attentions.0.proj_out.bias"]
        tensors["down_blocks.9.resnets.0.conv1.weight"] = np.zeros((1,), np.float32)
        tensors["conv_out.bias"] = np.zeros((5,), np.float32)
        save(file, tensors)
        message = self.refused(WeightsError, load_unet, str(folder))
        self.assertIn("does not fit the model", message)
        self.assertIn("missing 1 (mid_block.attentions.0.proj_out.bias)", message)
        self.assertIn("unexpected 1 (down_blocks.9.resnets.0.conv1.weight)", message)
        self.assertIn("conv_out.bias is [5], the model expects [4]", message)

    def test_a_folder_without_safetensors_weights_says_so(self) -> None:
        folder = pathlib.Path(self.copy(SD / "vae", {}))
        (folder / "diffusion_pytorch_model.safetensors").rename(folder / "diffusion_pytorch_model.bin")
        self.assertIn(
            "diffusion_pytorch_model.bin is a PyTorch pickle", self.refused(ConfigError, load_vae, str(folder))
        )


if __name__ == "__main__":
    unittest.main()
