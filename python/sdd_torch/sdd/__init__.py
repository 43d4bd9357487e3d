"""Torch twins of SDD's building blocks (src/sdd/*.ts, src/nn/adam.ts): the LevelsMapper, the SDS
guidance, the host Adam update, the mapper training loop shared by SDD and StyleCLIP, and the run
skeleton both methods share (python/sdd_torch/methods/sdd.py, styleclip.py)."""
