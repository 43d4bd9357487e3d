"""The core of the torch engine: the run / worker / doctor entry points, in-process and as
`python -m sdd_torch` processes; with tests/core_contract.py's cases (RunContext over a real
contract folder, the runtime switches, the method registry), imported here so that this module runs
them all.

The method run here is a trivial twin (tests/core_fixtures.py) put into the registry for the test
only (the real twins are tested by their helpers' files). Run: cd python && python3 -m unittest tests.test_core
"""
import io
import json
import os
import subprocess
import sys
import time
import types
import unittest
from pathlib import Path
from typing import Any, Dict, List
from unittest import mock

import numpy as np
import torch

from sdd_torch import contract, methods
from sdd_torch.__main__ import doctor, failure, run_contract, serve, stdin_lines
from tests.core_contract import ContractTest, RegistryTest, RuntimeTest
from tests.core_fixtures import (
    NOISE,
    PYTHON_DIR,
    SOURCES,
    TEST_METHOD,
    TEST_MODULE,
    TempDir,
    make_contract,
    manifest,
    module_cli,
    trivial_run,
)

# The contract, runtime and registry cases run with this module's own.
__all__ = ["ContractTest", "RuntimeTest", "RegistryTest", "RunTest", "CliTest"]


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
        self.assertRegex(line or "", r"^ValueError: bad value \(at tests/core_fixtures.py:\d+\)$")
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
