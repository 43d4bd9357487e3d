#!/usr/bin/env bash
# What `make test` needs besides Node and node_modules, checked before anything runs, the same way
# the tests find it:
#   chromium  loads the report pages in the browser tests (src/util/chromium.ts: chromiumPath);
#   python3 with numpy and scipy  computes reference values (src/util/python.ts: `python3` on PATH,
#             then Debian's /usr/bin/python3, whichever imports the modules);
#   git       the run store's provenance test (src/runs/store.test.ts);
#   slurm-wlm and munge  the Slurm executor's tests start a real single-node cluster from them
#             (test/slurm_cluster.ts; as root, which slurmd needs: elsewhere those tests skip, saying why);
#   python3-torch  the torch engine's tests (python/sdd_torch on the CPU);
#   python3-pyflakes, mypy, black and pycodestyle  `make lint` (pyflakes from whichever python3 above
#             imports it; black formats and pycodestyle checks line length).
# Missing any: prints one line naming them and the one apt-get line that installs them; exit 1.
# `--missing` prints only the Debian package names (space-separated, empty when none) and exits 0:
# .ci/run installs exactly those.
set -uo pipefail

missing=()
have_chromium() {
  local p
  for p in /usr/bin/chromium /usr/bin/chromium-browser /usr/bin/google-chrome; do [[ -e $p ]] && return 0; done
  return 1
}
python_with() {
  local py
  for py in python3 /usr/bin/python3; do "$py" -c "import $1" >/dev/null 2>&1 && return 0; done
  return 1
}

have_chromium || missing+=(chromium)
# One interpreter must import both (the FID reference test asks for numpy and scipy together).
if ! python_with 'numpy, scipy'; then
  python_with numpy || missing+=(python3-numpy)
  missing+=(python3-scipy)
fi
command -v git >/dev/null 2>&1 || missing+=(git)
for bin in slurmctld slurmd sbatch; do
  if ! command -v "$bin" >/dev/null 2>&1; then missing+=(slurm-wlm); break; fi
done
command -v munged >/dev/null 2>&1 || missing+=(munge)
python_with pyflakes || missing+=(python3-pyflakes)
# The torch engine's tests (engine parity on the CPU): Debian's python3-torch (1.13) with numpy.
python_with 'torch, numpy' || missing+=(python3-torch)
command -v mypy >/dev/null 2>&1 || missing+=(mypy)
command -v black >/dev/null 2>&1 || missing+=(black)
command -v pycodestyle >/dev/null 2>&1 || missing+=(pycodestyle)

if [[ ${1:-} == --missing ]]; then
  echo "${missing[*]}"
  exit 0
fi
if ((${#missing[@]})); then
  echo "make test: missing ${missing[*]} (browser tests need chromium, reference tests python3 with numpy and scipy, store tests git, cluster tests slurm-wlm and munge, the linters python3-pyflakes, mypy, black and pycodestyle, the torch engine python3-torch); install with:" >&2
  echo "  apt-get install -y ${missing[*]}" >&2
  exit 1
fi
