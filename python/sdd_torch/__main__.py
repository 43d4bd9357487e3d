"""python -m sdd_torch run [--contract DIR] | worker | doctor (python-api.md, CORE).

run      one run of the contract folder DIR (default $SDD_CONTRACT_DIR). Exit 0 when done; on a
         failure one line on stderr and exit 1, or 3 for CUDA out of memory ("device: CUDA out of
         memory ..."); a non-finite metric or output is "non-finite: ...".
worker   runs one contract folder per stdin line {"contract": DIR}, answering one JSON line each:
         {"ok": true} or {"ok": false, "code": int, "error": "one line"}. It exits when stdin
         closes or the harness is gone. What a method prints goes to stderr: stdout carries only
         the answers.
doctor   one JSON object: python, torch, numpy, CUDA, devices, threads, and why_not (why torch
         cannot run here, else null). Works without torch or numpy installed.
"""
import argparse
import contextlib
import json
import os
import select
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

OOM = 3
FAILED = 1
# The harness went away (its pid is gone): nobody reads this code, but it tells the kill in a trace.
EXIT_ORPHAN = 4
# Errors whose message is already the one line to show (the package's own).
_ONE_LINE = ("ContractError", "NoTwin", "SafetensorsError", "RuntimeFailure")


def _line(text: str) -> str:
    first = next((s.strip() for s in str(text).splitlines() if s.strip()), "")
    return first[:500]


def _is_oom(e: BaseException) -> bool:
    oom = getattr(sys.modules.get("torch.cuda"), "OutOfMemoryError", None)
    if oom is not None and isinstance(e, oom):
        return True
    return isinstance(e, RuntimeError) and "CUDA out of memory" in str(e)


def _where(e: BaseException) -> str:
    """Where a plain exception came from, on the same line: the innermost frame of our own code
    (not the standard library's, torch's or numpy's), relative to python/ when it is in there."""
    import sysconfig

    libs = tuple(
        os.path.abspath(p)
        for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    )
    ours = [
        f
        for f in traceback.extract_tb(e.__traceback__)
        if not os.path.abspath(f.filename).startswith(libs) and "-packages" + os.sep not in f.filename
    ]
    if not ours:
        return ""
    f = ours[-1]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.abspath(f.filename)
    return f" (at {os.path.relpath(path, root) if path.startswith(root + os.sep) else path}:{f.lineno})"


def failure(e: BaseException) -> Tuple[int, str]:
    """Exit code and the one line for an exception that ended a run."""
    if _is_oom(e):
        first = _line(str(e))
        return OOM, "device: " + (first if first.startswith("CUDA out of memory") else f"CUDA out of memory: {first}")
    kind = type(e).__name__
    if kind == "NonFinite":
        return FAILED, f"non-finite: {_line(str(e))}"
    if kind == "Stopped":
        return FAILED, f"stopped: {_line(str(e))}"
    if kind in _ONE_LINE:
        return FAILED, _line(str(e))
    return FAILED, f"{kind}: {_line(str(e))}{_where(e)}"


def _keep_traceback(contract_dir: str, e: BaseException) -> None:
    """The whole traceback beside the one line, in contract/out/traceback.txt (best effort: the
    harness clears out/ before the next attempt)."""
    if type(e).__name__ == "Stopped":
        return  # an orphan writes nothing
    try:
        from .contract import write_atomic

        out = os.path.join(contract_dir, "out")
        if os.path.isdir(out):
            write_atomic(
                os.path.join(out, "traceback.txt"),
                "".join(traceback.format_exception(type(e), e, e.__traceback__)).encode("utf-8"),
            )
    except Exception:  # noqa: BLE001 - the failure's own line matters more
        pass


def run_contract(contract_dir: str) -> Tuple[int, Optional[str]]:
    """One run: manifest checked, precision and seed set, the method's twin run, env.json written.
    Returns (exit code, the one line on failure)."""
    try:
        from . import contract, methods, runtime

        ctx = contract.RunContext(contract_dir)
        runtime.prepare(ctx.device, ctx.precision, ctx.seed)
        module = methods.load(ctx.method)
        module.run(ctx)
        ctx.write_json("env.json", {**runtime.environment(ctx.device, ctx.precision), **ctx.env_extra})
        return 0, None
    except Exception as e:  # noqa: BLE001 - every failure becomes its one line
        _keep_traceback(contract_dir, e)
        code, line = failure(e)
        if code == OOM:
            _free_cuda()
        return code, line


def _free_cuda() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------- worker


def parent_alive(start_ppid: int) -> Callable[[], bool]:
    """Whether the harness is still there: our parent unchanged and SDD_PARENT_PID alive."""
    from .contract import parent_pid_env, pid_alive

    watched = parent_pid_env()

    def alive() -> bool:
        return os.getppid() == start_ppid and (watched is None or pid_alive(watched))

    return alive


def watchdog(alive: Callable[[], bool], period_s: float = 0.5) -> None:
    """Ends the process within period_s of the harness going, even in the middle of a batch: an
    orphan must neither hold the GPU nor write into a run that is resumed. Every file is written
    whole (temp + rename), so exiting at any point leaves at most a stray temp file."""

    def watch() -> None:
        while alive():
            time.sleep(period_s)
        os._exit(EXIT_ORPHAN)

    threading.Thread(target=watch, name="sdd-harness-watchdog", daemon=True).start()


def stdin_lines(fd: int, alive: Callable[[], bool], poll_s: float = 1.0) -> Iterator[str]:
    """Lines of fd as they arrive, read raw (a buffered reader could hold a line select() does
    not see); ends at end of file or once the harness is gone."""
    buf = b""
    while True:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line.decode("utf-8", "replace")
        if not alive():
            return
        ready, _, _ = select.select([fd], [], [], poll_s)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            if buf.strip():
                yield buf.decode("utf-8", "replace")
            return
        buf += chunk


def serve(lines: Iterator[str], reply: Callable[[Dict[str, Any]], None]) -> None:
    """The worker loop: one run per request line, one answer per request."""
    for raw in lines:
        if not raw.strip():
            continue
        try:
            request = json.loads(raw)
            contract_dir = request["contract"]
            if not isinstance(contract_dir, str):
                raise TypeError("contract is not a string")
        except (ValueError, KeyError, TypeError) as e:
            reply(
                {
                    "ok": False,
                    "code": FAILED,
                    "error": f"worker: bad request {raw.strip()[:80]!r}: {_line(str(e))}, "
                    f"expected {{\"contract\": DIR}}",
                }
            )
            continue
        here = os.getcwd()
        try:
            # As in a `run`: the run folder is the working directory, and stdout stays the answers'.
            os.chdir(os.path.dirname(os.path.abspath(contract_dir)))
            with contextlib.redirect_stdout(sys.stderr):
                code, line = run_contract(contract_dir)
        except OSError as e:
            code, line = FAILED, f"worker: {contract_dir}: {_line(str(e))}"
        finally:
            os.chdir(here)
        reply({"ok": True} if code == 0 else {"ok": False, "code": code, "error": line})


def _reply_to(stream: Any) -> Callable[[Dict[str, Any]], None]:
    def reply(answer: Dict[str, Any]) -> None:
        stream.write(json.dumps(answer) + "\n")
        stream.flush()

    return reply


# ---------------------------------------------------------------- doctor


def _version_tuple(v: str) -> Tuple[int, ...]:
    parts: List[int] = []
    for p in v.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def doctor() -> Dict[str, Any]:
    """Whether this interpreter can run the torch engine, importing torch only here."""
    info: Dict[str, Any] = {
        "python": sys.version.split()[0],
        "interpreter": sys.executable,
        "torch": None,
        "numpy": None,
        "cuda_available": False,
        "cuda": None,
        "devices": [],
        "threads": None,
        "why_not": None,
    }
    reasons: List[str] = []
    if sys.version_info < (3, 9):
        reasons.append(f"python {info['python']} is older than 3.9")
    try:
        import numpy

        info["numpy"] = numpy.__version__
    except ImportError as e:
        reasons.append(f"no numpy in {sys.executable} ({_line(str(e))})")
    try:
        import torch

        info["torch"] = torch.__version__
        if _version_tuple(torch.__version__) < (1, 13):
            reasons.append(f"torch {torch.__version__} is older than 1.13")
        info["threads"] = torch.get_num_threads()
        info["cuda"] = torch.version.cuda
        info["cuda_available"] = bool(torch.cuda.is_available())
        if info["cuda_available"]:
            for i in range(torch.cuda.device_count()):
                p = torch.cuda.get_device_properties(i)
                info["devices"].append({"name": p.name, "memory_bytes": int(p.total_memory)})
    except ImportError as e:
        reasons.append(f"no torch in {sys.executable} ({_line(str(e))})")
    info["why_not"] = "; ".join(reasons) or None
    return info


# ---------------------------------------------------------------- main


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sdd_torch", description="The torch engine of sdd-bench (docs/method-contract.md)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="one run of a contract folder")
    run.add_argument("--contract", help="the run's contract folder (default: $SDD_CONTRACT_DIR)")
    sub.add_parser("worker", help="runs one contract folder per stdin line {\"contract\": DIR}")
    sub.add_parser("doctor", help="print whether torch can run here, as JSON")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        print(json.dumps(doctor()))
        return 0
    alive = parent_alive(os.getppid())
    watchdog(alive)
    if args.command == "worker":
        try:
            serve(stdin_lines(sys.stdin.fileno(), alive), _reply_to(sys.stdout))
        except BrokenPipeError:  # the harness closed our stdout: it is gone, nobody to answer
            sys.stdout = open(os.devnull, "w")
            return FAILED
        return 0
    contract_dir = args.contract or os.environ.get("SDD_CONTRACT_DIR")
    if not contract_dir:
        print("run: no contract folder (--contract DIR or SDD_CONTRACT_DIR)", file=sys.stderr)
        return FAILED
    code, line = run_contract(contract_dir)
    if line:
        print(line, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
