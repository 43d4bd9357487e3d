"""sdd_torch: the torch engine of sdd-bench. The harness runs a built-in method's PyTorch twin
through the run-folder method contract (docs/method-contract.md; `python -m sdd_torch run`).

Importing the package imports neither torch nor numpy, so `python -m sdd_torch doctor` can say
why torch cannot run on an interpreter that lacks it.
"""

__version__ = "1"
