"""The run contract (RunContext over a real contract folder: inputs, outputs, whole-file writes,
metrics, checkpoints, the harness watch), the runtime switches and the method registry. Run as part
of tests/test_core.py, which imports these cases.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any, Dict, List, Tuple
from unittest import mock

import numpy as np
import torch

from sdd_torch import contract, methods, runtime
from sdd_torch.contract import ContractError, NonFinite, RunContext, Stopped
from tests.core_fixtures import H, M, NOISE, SOURCES, TEST_METHOD, TempDir, manifest


class ContractTest(TempDir):
    def test_inputs_round_trip(self) -> None:
        c = self.ctx()
        self.assertEqual(
            (c.method, c.seed, c.run_id, c.precision, str(c.device)), (TEST_METHOD, 5, "abc123def456", "fp32", "cpu")
        )
        self.assertEqual(c.plan, {"gain": 0.5})
        src = c.input("sources")
        assert src is not None
        np.testing.assert_array_equal(src, SOURCES)
        self.assertIsNone(c.input("train"))
        np.testing.assert_array_equal(c.noise("edit"), NOISE)
        with self.assertRaisesRegex(ContractError, r"noise stream 'mapper' is not in the manifest \(it has: edit\)"):
            c.noise("mapper")
        with self.assertRaisesRegex(ContractError, "input 'edits': expected one of"):
            c.input("edits")

    def test_input_of_the_wrong_shape_is_one_line(self) -> None:
        m = manifest()
        m["inputs"]["sources"]["shape"] = [M + 1, H, H, 3]
        contract.write_inputs(self.root / "contract", m, {"sources.npy": SOURCES, "noise_edit.npy": NOISE})
        with self.assertRaisesRegex(
            ContractError,
            r"^contract/in/sources.npy: float32 \[3, 4, 4, 3\], "
            r"the manifest's inputs.sources is float32 \[4, 4, 4, 3\]$",
        ):
            RunContext(self.root / "contract").input("sources")

    def test_manifest_refusals(self) -> None:
        cases: List[Tuple[Dict[str, Any], str]] = [
            ({"contract": 2}, "manifest.json: contract 2, the torch engine speaks 1"),
            ({"engine": {"name": "numpy"}}, 'engine {"name": "numpy"}, expected an engine block with name "torch"'),
            (
                {"engine": {**manifest()["engine"], "precision": "bf16"}},
                "engine.precision 'bf16', expected one of fp32, tf32, fp16",
            ),
        ]
        for over, message in cases:
            with self.subTest(message), self.assertRaises(ContractError) as e:
                self.ctx(**over)
            self.assertIn(message, str(e.exception))
        with self.assertRaisesRegex(ContractError, "manifest.json: missing"):
            RunContext(self.root / "nothing")

    def test_outputs(self) -> None:
        c = self.ctx()
        edited = SOURCES[::-1].copy()
        c.write_edited(edited)
        np.testing.assert_array_equal(np.load(self.out("edited.npy")), edited)
        self.assertEqual(np.load(self.out("edited.npy")).dtype, np.dtype("<f4"))
        with self.assertRaisesRegex(
            ContractError, r"^edited: shape \[2, 4, 4, 3\], the manifest expects \[3, 4, 4, 3\]$"
        ):
            c.write_edited(edited[:2])
        bad = edited.copy()
        bad[1, 0, 0, 0] = np.nan
        bad[2, 1, 0, 0] = np.inf
        with self.assertRaisesRegex(NonFinite, r"^edited: 2 non-finite values \(the first in image 1\)$"):
            c.write_edited(bad)
        np.testing.assert_array_equal(np.load(self.out("edited.npy")), edited)  # the good file stays
        with self.assertRaisesRegex(ContractError, "originals: the manifest asks for no originals"):
            c.write_originals(edited)
        c.progress(2, 7, "train")
        self.assertEqual(json.loads(self.out("progress.json").read_text()), {"done": 2, "total": 7, "label": "train"})
        c.write_timing(1.5, 0.25, batches=3)
        timing = json.loads(self.out("timing.json").read_text())
        self.assertEqual(
            (timing["tau_train_s"], timing["tau_infer_s"], timing["synchronized"], timing["batches"]),
            (1.5, 0.25, False, 3),
        )
        self.assertIsInstance(timing["peak_memory_bytes"], int)
        self.assertGreater(
            timing["peak_memory_bytes"], 10 * 2**20
        )  # a process with torch loaded: tens of MB at least
        with self.assertRaisesRegex(ContractError, "tau_infer_s = nan"):
            c.write_timing(1.0, float("nan"))
        self.assertEqual(sorted(p.name for p in self.out("").iterdir()), ["edited.npy", "progress.json", "timing.json"])

    def test_metrics_whole_lines_and_nonfinite(self) -> None:
        c = self.ctx()
        c.metric(0, loss=0.5, lr=np.float32(0.25))
        c.metric(1, loss=torch.tensor(0.125))
        for bad in (float("nan"), float("inf"), -np.inf):
            with self.assertRaisesRegex(NonFinite, r"^metric loss = (nan|inf|-inf) at step 2$"):
                c.metric(2, lr=0.1, loss=bad)
        text = self.out("metrics.jsonl").read_text()
        self.assertTrue(text.endswith("\n"))
        self.assertEqual(
            [json.loads(line) for line in text.splitlines()],
            [{"step": 0, "loss": 0.5, "lr": 0.25}, {"step": 1, "loss": 0.125}],
        )

    def test_atomic_write_leaves_the_old_file_when_interrupted(self) -> None:
        c = self.ctx()
        c.progress(1, 2)
        with mock.patch("os.replace", side_effect=OSError("disk gone")), self.assertRaises(OSError):
            c.progress(2, 2)
        self.assertEqual(json.loads(self.out("progress.json").read_text())["done"], 1)
        self.assertEqual(
            [p.name for p in self.out("").iterdir()], ["progress.json"], "no temporary file is left behind"
        )

    def test_checkpoints(self) -> None:
        c = self.ctx()
        self.assertIsNone(c.load_checkpoint())
        w = np.arange(6, dtype=np.float32).reshape(2, 3)
        c.save_checkpoint(
            3,
            {"w": w, "mapper/b": torch.ones(2, dtype=torch.float64), "count": np.array([7])},
            {"lr": 0.1, "phase": "a"},
        )
        step, tensors, state = c.load_checkpoint() or (None, {}, {})
        self.assertEqual((step, state), (3, {"lr": 0.1, "phase": "a"}))
        np.testing.assert_array_equal(tensors["w"], w)
        self.assertEqual((tensors["mapper/b"].dtype, tensors["count"].tolist()), (np.float64, [7]))
        self.assertEqual(
            json.loads(self.out("checkpoint/state.json").read_text()),
            {"step": 3, "tensors": "tensors-3.npz", "state": {"lr": 0.1, "phase": "a"}},
        )
        # Killed between the tensors and state.json: the last whole checkpoint is still the one read.
        real = RunContext.write_json

        def dies_at_state(self_: RunContext, name: str, value: Any) -> None:
            if name.endswith("state.json"):
                raise KeyboardInterrupt
            real(self_, name, value)

        with mock.patch.object(RunContext, "write_json", dies_at_state), self.assertRaises(KeyboardInterrupt):
            c.save_checkpoint(5, {"w": w + 1}, {})
        step, tensors, _ = c.load_checkpoint() or (None, {}, {})
        self.assertEqual(step, 3)
        np.testing.assert_array_equal(tensors["w"], w)
        c.save_checkpoint(6, {"w": w + 2}, {})
        self.assertEqual(sorted(p.name for p in self.out("checkpoint").iterdir()), ["state.json", "tensors-6.npz"])
        with self.assertRaisesRegex(NonFinite, "state.json: Out of range float values"):
            c.save_checkpoint(7, {}, {"loss": float("nan")})

    def test_stops_when_the_harness_is_gone(self) -> None:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        with mock.patch.dict(os.environ, {"SDD_PARENT_PID": str(dead.pid)}):
            c = self.ctx()
        with self.assertRaisesRegex(Stopped, f"SDD_PARENT_PID {dead.pid} exited"):
            c.progress(1, 2)
        with self.assertRaises(Stopped):
            c.metric(1, loss=1.0)
        with self.assertRaises(Stopped):
            c.write_edited(SOURCES)
        self.assertEqual(list(self.out("").iterdir()), [], "an orphan writes nothing")
        with mock.patch.dict(os.environ, {"SDD_PARENT_PID": str(os.getppid())}):
            c = self.ctx()
        c.progress(1, 2)
        with mock.patch("os.getppid", return_value=1), self.assertRaisesRegex(Stopped, "parent .* exited"):
            c.progress(2, 2)


class RuntimeTest(unittest.TestCase):
    def tearDown(self) -> None:
        runtime.apply_precision("fp32")

    def test_precision_switches(self) -> None:
        self.assertEqual(runtime.apply_precision("tf32"), {"tf32_matmul": True, "tf32_cudnn": True})
        self.assertTrue(torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32)
        for p in ("fp32", "fp16"):
            self.assertEqual(runtime.apply_precision(p), {"tf32_matmul": False, "tf32_cudnn": False})
            self.assertFalse(torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32)

    def test_devices(self) -> None:
        self.assertEqual(str(runtime.resolve_device("cpu")), "cpu")
        self.assertEqual(str(runtime.resolve_device("auto")), "cuda:0" if torch.cuda.is_available() else "cpu")
        if torch.cuda.is_available():
            self.assertEqual(str(runtime.resolve_device("cuda")), "cuda:0")
        else:
            with self.assertRaisesRegex(
                runtime.RuntimeFailure, "^device: engine.device is cuda but torch .* sees no CUDA device"
            ):
                runtime.resolve_device("cuda")
        with self.assertRaisesRegex(runtime.RuntimeFailure, "engine.device: 'tpu', expected auto, cpu or cuda"):
            runtime.resolve_device("tpu")

    def test_environment(self) -> None:
        runtime.apply_precision("tf32")
        env = runtime.environment(torch.device("cpu"), "tf32")
        self.assertEqual(
            env["versions"], {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__}
        )
        self.assertEqual(
            (
                env["interpreter"],
                env["device"],
                env["precision"],
                env["tf32_matmul"],
                env["tf32_cudnn"],
                env["gpu"],
                env["cuda"],
            ),
            (sys.executable, "cpu", "tf32", True, True, None, None),
        )
        self.assertEqual(env["threads"], torch.get_num_threads())

    def test_peak_rss(self) -> None:
        runtime.reset_peak(torch.device("cpu"))
        before = runtime.peak_rss_bytes() or 0
        block = np.ones(64 * 2**20 // 8)  # 64 MiB touched
        after = runtime.peak_rss_bytes() or 0
        del block
        self.assertGreater(after - before, 48 * 2**20)


class RegistryTest(unittest.TestCase):
    def test_missing_twins_are_one_line(self) -> None:
        with self.assertRaisesRegex(
            methods.NoTwin, r"^method nosuch has no torch twin \(not in sdd_torch.methods.METHODS\)$"
        ):
            methods.load("nosuch")
        with mock.patch.dict(methods.METHODS, {"ghost": "sdd_torch.methods.ghost"}):
            with self.assertRaisesRegex(
                methods.NoTwin, r"^method ghost has no torch twin \(python/sdd_torch/methods/ghost.py\)$"
            ):
                methods.load("ghost")
        self.assertEqual(sorted(methods.METHODS), ["ddib", "diffae", "sdd", "sdedit", "styleclip"])

    def test_an_import_error_inside_a_twin_is_not_masked(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            Path(d, "broken_twin_core.py").write_text("import no_such_dependency_xyz\n")
            sys.path.insert(0, d)
            try:
                with mock.patch.dict(methods.METHODS, {"broken": "broken_twin_core"}), self.assertRaises(
                    ModuleNotFoundError
                ) as e:
                    methods.load("broken")
                self.assertEqual(e.exception.name, "no_such_dependency_xyz")
            finally:
                sys.path.remove(d)
