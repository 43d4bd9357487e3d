"""The core of the torch engine: RunContext over a real contract folder (inputs, outputs, whole-file
writes, metrics, checkpoints, the harness watch), the runtime switches, the method registry, and the
run / worker / doctor entry points, in-process and as `python -m sdd_torch` processes.

The method run here is a trivial twin defined in this file and put into the registry for the test
only (the real twins are tested by their helpers' files). Run: cd python && python3 -m unittest tests.test_core
"""
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import types
import unittest
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from unittest import mock

import numpy as np
import torch

from sdd_torch import contract, methods, runtime
from sdd_torch.__main__ import doctor, failure, run_contract, serve, stdin_lines
from sdd_torch.contract import ContractError, NonFinite, RunContext, Stopped

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


class RunTest(TempDir):
    """run_contract and the worker loop on the test twin, registered for these tests only."""

    def setUp(self) -> None:
        super().setUp()
        module = types.ModuleType(TEST_MODULE)
        module.run = trivial_run  # type: ignore[attr-defined]
        patches = [
            mock.patch.dict(sys.modules, {TEST_MODULE: module}),
            mock.patch.dict(methods.METHODS, {TEST_METHOD: TEST_MODULE}),
        ]
        for p in patches:
            p.start()
            self.addCleanup(p.stop)

    def run_one(self, name: str = "run", **params: Any) -> Path:
        m = manifest()
        m["params"] = {**m["params"], **params}
        d = contract.write_inputs(self.root / name / "contract", m, {"sources.npy": SOURCES, "noise_edit.npy": NOISE})
        return d

    def test_a_whole_run(self) -> None:
        d = self.run_one()
        self.assertEqual(run_contract(str(d)), (0, None))
        out = d / "out"
        np.testing.assert_array_equal(np.load(out / "edited.npy"), np.clip(SOURCES + 0.5 * NOISE, 0, 1))
        self.assertEqual(
            [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()], [0, 1, 2, 3]
        )
        env = json.loads((out / "env.json").read_text())
        self.assertEqual((env["device"], env["precision"], env["tf32_matmul"]), ("cpu", "fp32", False))
        torch.manual_seed(5)
        self.assertEqual(env["draws"], float(torch.rand(1)[0]), "torch seeded with the manifest's seed")
        timing = json.loads((out / "timing.json").read_text())
        self.assertEqual(set(timing), {"tau_train_s", "tau_infer_s", "peak_memory_bytes", "synchronized"})
        self.assertEqual(json.loads((out / "progress.json").read_text()), {"done": 5, "total": 5, "label": "edit"})

    def test_resume_appends_after_the_checkpoint(self) -> None:
        d = self.run_one(behaviour="nan")
        self.assertEqual(run_contract(str(d)), (1, "non-finite: metric loss = nan at step 2"))
        self.assertEqual(json.loads((d / "out/checkpoint/state.json").read_text())["step"], 2)
        m = json.loads((d / "in/manifest.json").read_text())
        m["params"]["behaviour"] = "ok"
        contract.write_atomic(d / "in/manifest.json", contract.json_bytes(m))
        self.assertEqual(run_contract(str(d)), (0, None))
        self.assertEqual(
            [json.loads(line)["step"] for line in (d / "out/metrics.jsonl").read_text().splitlines()], [0, 1, 2, 3]
        )

    def test_failures_are_one_line_with_their_exit_code(self) -> None:
        code, line = run_contract(str(self.run_one("oom", behaviour="oom")))
        self.assertEqual(
            (code, line), (3, "device: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 1.00 GiB total capacity)")
        )
        d = self.run_one("boom", behaviour="boom")
        code, line = run_contract(str(d))
        self.assertEqual(code, 1)
        self.assertRegex(line or "", r"^ValueError: bad value \(at tests/test_core.py:\d+\)$")
        self.assertIn("second line", (d / "out/traceback.txt").read_text())
        self.assertFalse((d / "out/env.json").exists())
        m = manifest(method="sdd")
        with mock.patch.dict(methods.METHODS, {"sdd": "sdd_torch.methods.not_written_yet"}):
            code, line = run_contract(str(contract.write_inputs(self.root / "x" / "contract", m, {})))
        self.assertEqual(
            (code, line), (1, "method sdd has no torch twin (python/sdd_torch/methods/not_written_yet.py)")
        )
        self.assertEqual(
            run_contract(str(self.root / "none"))[1],
            f"{self.root / 'none' / 'in' / 'manifest.json'}: missing "
            f"(is {self.root / 'none'} a run's contract folder?)",
        )
        oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20 GiB")
        self.assertEqual(failure(oom), (3, "device: CUDA out of memory. Tried to allocate 20 GiB"))
        self.assertEqual(
            failure(RuntimeError("CUBLAS_STATUS_ALLOC_FAILED; CUDA out of memory")),
            (3, "device: CUDA out of memory: CUBLAS_STATUS_ALLOC_FAILED; CUDA out of memory"),
        )

    def test_worker_loop(self) -> None:
        answers: List[Dict[str, Any]] = []
        requests = [
            json.dumps({"contract": str(self.run_one("a"))}),
            "",
            json.dumps({"contract": str(self.run_one("b", behaviour="oom"))}),
            "not json",
            json.dumps({"contract": str(self.run_one("c"))}),
        ]
        cwd = os.getcwd()
        printed = io.StringIO()
        with mock.patch("sys.stdout", printed):
            serve(iter(requests), answers.append)
        self.assertEqual(os.getcwd(), cwd)
        self.assertEqual(answers[0], {"ok": True})
        self.assertEqual(
            answers[1],
            {
                "ok": False,
                "code": 3,
                "error": "device: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 1.00 GiB total capacity)",
            },
        )
        self.assertEqual((answers[2]["ok"], answers[2]["code"]), (False, 1))
        self.assertRegex(answers[2]["error"], "^worker: bad request 'not json': ")
        self.assertEqual(answers[3], {"ok": True})
        self.assertEqual(len(answers), 4)
        self.assertTrue((self.root / "c/contract/out/edited.npy").is_file())

    @unittest.skipUnless(torch.cuda.is_available(), "needs a CUDA device")
    def test_on_cuda(self) -> None:
        """device cuda, tf32: synchronised timing, the allocator's peak, env.json's GPU facts; a
        real out-of-memory is exit 3 and the worker goes on after it."""
        answers: List[Dict[str, Any]] = []
        dirs = []
        for name, behaviour in (("oom", "real_oom"), ("gpu", "gpu")):
            m = manifest()
            m["params"]["behaviour"] = behaviour
            m["engine"].update(device="cuda", precision="tf32")
            dirs.append(
                contract.write_inputs(
                    self.root / name / "contract", m, {"sources.npy": SOURCES, "noise_edit.npy": NOISE}
                )
            )
        with mock.patch("sys.stdout", io.StringIO()):
            serve(iter(json.dumps({"contract": str(d)}) for d in dirs), answers.append)
        self.assertEqual((answers[0]["code"], answers[1]), (3, {"ok": True}))
        self.assertRegex(answers[0]["error"], "^device: CUDA out of memory")
        out = dirs[1] / "out"
        timing = json.loads((out / "timing.json").read_text())
        self.assertTrue(timing["synchronized"])
        self.assertGreaterEqual(timing["peak_memory_bytes"], 2**28)
        self.assertLess(timing["peak_memory_bytes"], 2**30, "the run's own peak, not the failed 1 PiB request's")
        env = json.loads((out / "env.json").read_text())
        name = torch.cuda.get_device_name(0)
        self.assertEqual(
            (
                env["device"],
                env["gpu"],
                env["cuda"],
                env["precision"],
                env["tf32_matmul"],
                env["tf32_cudnn"],
                env["block_sum"],
            ),
            (f"cuda:0 {name}", name, torch.version.cuda, "tf32", True, True, float(2**26)),
        )

    def test_stdin_lines(self) -> None:
        r, w = os.pipe()
        os.write(w, b'{"contract": "a"}\n{"contract": "b"}\n{"contr')
        os.write(w, b'act": "c"}')
        os.close(w)
        self.assertEqual(
            list(stdin_lines(r, lambda: True, 0.05)), ['{"contract": "a"}', '{"contract": "b"}', '{"contract": "c"}']
        )
        os.close(r)
        r, w = os.pipe()
        alive = iter([True, False])
        t0 = time.perf_counter()
        self.assertEqual(
            list(stdin_lines(r, lambda: next(alive), 0.05)), [], "ends once the harness is gone, stdin still open"
        )
        self.assertLess(time.perf_counter() - t0, 2)
        os.close(r)
        os.close(w)


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


class CliTest(TempDir):
    """The entry points as processes (the registry holds only the real twins here)."""

    def test_run_exit_codes(self) -> None:
        d = make_contract(self.root, method="nosuch")
        r = module_cli(["run", "--contract", str(d)])
        self.assertEqual(
            (r.returncode, r.stderr), (1, "method nosuch has no torch twin (not in sdd_torch.methods.METHODS)\n")
        )
        r = module_cli(["run"], env={"SDD_CONTRACT_DIR": str(make_contract(self.root / "2", contract=2))})
        self.assertEqual((r.returncode, r.stderr), (1, "manifest.json: contract 2, the torch engine speaks 1\n"))
        r = module_cli(["run"], env={"SDD_CONTRACT_DIR": ""})
        self.assertEqual(
            (r.returncode, r.stderr), (1, "run: no contract folder (--contract DIR or SDD_CONTRACT_DIR)\n")
        )

    def test_worker_process(self) -> None:
        d = make_contract(self.root, method="nosuch")
        r = module_cli(
            ["worker"],
            stdin=json.dumps({"contract": str(d)}) + "\n" + json.dumps({"contract": str(self.root / "gone")}) + "\n",
        )
        self.assertEqual(r.returncode, 0)
        answers = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual(
            answers[0],
            {"ok": False, "code": 1, "error": "method nosuch has no torch twin (not in sdd_torch.methods.METHODS)"},
        )
        self.assertRegex(answers[1]["error"], "gone/in/manifest.json: missing")
        self.assertEqual(len(answers), 2)

    def test_worker_exits_when_the_harness_is_gone(self) -> None:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        p = subprocess.Popen(
            [sys.executable, "-m", "sdd_torch", "worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": PYTHON_DIR, "SDD_PARENT_PID": str(dead.pid)},
        )
        try:
            # The watchdog ends it (exit 4, EXIT_ORPHAN) although its stdin is still open.
            self.assertEqual(p.wait(timeout=30), 4, "stdin still open, yet the worker left")
        finally:
            if p.poll() is None:
                p.kill()
            assert p.stdin is not None and p.stdout is not None
            p.stdin.close()
            p.stdout.close()

    def test_doctor(self) -> None:
        info = doctor()
        self.assertEqual((info["torch"], info["numpy"], info["why_not"]), (torch.__version__, np.__version__, None))
        self.assertEqual(info["cuda_available"], torch.cuda.is_available())
        self.assertEqual(len(info["devices"]), torch.cuda.device_count() if torch.cuda.is_available() else 0)
        r = module_cli(["doctor"])
        self.assertEqual((r.returncode, json.loads(r.stdout)["why_not"]), (0, None))
        # Without torch (an import of it fails): still one JSON object, saying why.
        r = module_cli(
            [],
            code="import sys; sys.modules['torch'] = None; "
            "from sdd_torch.__main__ import main; sys.exit(main(['doctor']))",
        )
        info = json.loads(r.stdout)
        self.assertEqual((r.returncode, info["torch"]), (0, None))
        self.assertRegex(info["why_not"], f"^no torch in {sys.executable} ")


if __name__ == "__main__":
    unittest.main()
