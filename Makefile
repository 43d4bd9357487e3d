# sdd-bench — every target installs dependencies first when node_modules is missing or stale.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE ?= node
SDD := $(NODE) bin/sdd.mjs
STAMP := node_modules/.sdd-installed
TESTS = $(shell find src test baselines datasets -name '*.test.ts' 2>/dev/null | sort)
# node:test runs files in parallel subprocesses; two cores here.
TEST_CONCURRENCY ?= 2

.PHONY: help deps prereqs test typecheck layers lint lint-py lint-ts format unit test-backend table1 table1-paper report-example table2 ablation tradeoff regress zoo bench bench-kernels bench-pool bench-unet bench-train bench-fid bench-time bench-gpu bench-attention bench-stylegan2 bench-engines bench-tau paper-time profile doctor schema clean bundle

help:
	@echo "make table1    main job: Table 1 on the embedded toyfaces world"
	@echo "make report-example   docs/report-example.png from a real quick Table 1 run (temp store)"
	@echo "make table2    Table 2: SDD vs StyleCLIP per prompt group"
	@echo "make ablation  Table 3: SDD timestep-selection strategies"
	@echo "make regress CANDIDATE=zoo:DIR   paired regression report of new weights (exit 1 on regression)"
	@echo "make zoo       retrain the toyfaces models from scratch"
	@echo "make test      typecheck + layers + lint + the whole test suite (node:test); needs chromium,"
	@echo "               python3-numpy, python3-scipy, git, mypy, python3-pyflakes (checked first: bin/check-prereqs.sh)"
	@echo "               (any table target takes PROFILE=quick for its small version)"
	@echo "make lint      lint-py (black, pycodestyle line length, pyflakes, mypy: mypy.ini) + lint-ts"
	@echo "make lint-ts   Prettier (check) + ESLint (type-aware typescript-eslint) + knip over the TypeScript"
	@echo "make format    Prettier writes the TypeScript/JavaScript formatting in place"
	@echo "make test-backend BACKEND=webgpu   the backend-agnostic tests on BACKEND + the WebGPU conformance set"
	@echo "make bench     benchmarks (results in bench/results/)"
	@echo "make doctor    which compute backend runs here and why"
	@echo "make bundle    dist/: the CLI as one offline folder for Node 20 machines without npm"

$(STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: $(STAMP)

# chromium, python3 with numpy + scipy, git: checked before anything else runs, with the one
# apt-get line that installs what is missing (the tests would otherwise fail deep inside the run).
prereqs:
	@bash bin/check-prereqs.sh

typecheck: deps
	npx tsc --noEmit -p tsconfig.json

unit: prereqs deps
	$(NODE) --import tsx --test --test-concurrency=$(TEST_CONCURRENCY) $(TESTS)

# The backend-agnostic suite (the test files that take their backend from SDD_BACKEND, i.e. call
# initBackend(backendFromEnv())) plus the WebGPU conformance set (test/webgpu_conformance*.test.ts), with
# SDD_BACKEND=$(BACKEND). Without a WebGPU adapter the conformance tests skip, saying why;
# SDD_CONFORMANCE_FULL=1 adds `sdd zoo eval` on webgpu (minutes on a software adapter).
BACKEND ?= webgpu
BACKEND_TESTS = $(shell grep -rlF --include='*.test.ts' 'initBackend(backendFromEnv())' src test baselines datasets 2>/dev/null)
CONFORMANCE_TESTS = $(wildcard test/webgpu_conformance*.test.ts)

test-backend: prereqs deps
	SDD_BACKEND=$(BACKEND) $(NODE) --import tsx --test --test-concurrency=$(TEST_CONCURRENCY) $(sort $(BACKEND_TESTS) $(CONFORMANCE_TESTS))

# Import direction of the layers (cli → … → util; worlds and baselines only through their
# registries): the rules and the layer of each folder are in .dependency-cruiser.cjs.
layers: deps
	npx depcruise src baselines datasets bin --config .dependency-cruiser.cjs

# Linters (#28). Python: pyflakes, then mypy (settings and why: mypy.ini) over every .py that git tracks
# or would track; pyflakes from the interpreter that has it (Debian's python3-pyflakes; as check-prereqs).
PY_FILES = $(shell git ls-files --cached --others --exclude-standard '*.py')
PYFLAKES = $(firstword $(foreach py,python3 /usr/bin/python3,$(if $(shell $(py) -c 'import pyflakes' 2>/dev/null && echo y),$(py)))) -m pyflakes

lint: lint-py lint-ts

# TypeScript: Prettier's formatting (check only; `make format` writes it), ESLint with typescript-eslint's type-aware rules (floating and misused promises, unused
# variables, explicit any: eslint.config.js), then knip (unused files, exports and dependencies:
# knip.json). Part of `lint`, so of `make test`.
lint-ts: deps
	@status=0; npx prettier --ignore-path .prettierignore --check --log-level warn . || status=1; \
	  npx eslint --max-warnings 0 . || status=1; npx knip || status=1; exit $$status

# Formats the TypeScript and JavaScript (Prettier: .prettierrc.json) and the Python (Black) in place, 120 columns.
format: deps prereqs
	npx prettier --ignore-path .prettierignore --write --log-level warn .
	$(BLACK) $(PY_FILES)

# Black formats the Python (120 columns, quotes as written; `make format` writes it); lines that it
# cannot break (comments, strings) are pycodestyle's E501. tools/check_py_sizes.py holds every file,
# tests included, to ESLint's sizes: 300 code lines a file, 60 a function (no blank, comment or docstring lines).
BLACK = black -q -l 120 -S -t py39

lint-py: prereqs
	$(BLACK) --check $(PY_FILES)
	pycodestyle --select=E501 --max-line-length=120 $(PY_FILES)
	python3 tools/check_py_sizes.py $(PY_FILES)
	$(PYFLAKES) $(PY_FILES)
	mypy $(PY_FILES)

test: prereqs typecheck layers lint unit

doctor: deps
	$(SDD) doctor

schema: deps
	$(SDD) schema > experiment.schema.json

# Offline CLI for machines with Node 20 and no npm: dist/sdd.mjs (esbuild) with the workers, the
# wasm binaries, the webgpu addon (linux-x64), the zoo and experiments/ (layout: bin/bundle.mjs).
# Copy dist/ anywhere; `node dist/sdd.mjs run dist/experiments/… --no-report` (no reports in it).
bundle: deps
	$(NODE) bin/bundle.mjs

# Table 1 needs the toyfaces zoo (#3), metrics (#4), reports (#5), SDD (#6) and baselines (#7).
# PROFILE=quick runs the small version of an experiment (tests, CI); JOBS runs at a time (auto: one
# per core on CPU backends, the measured default of processes sharing the device on a GPU).
# EXECUTOR=slurm sends the runs to a Slurm cluster as array jobs (SLURM_FLAGS: e.g. "--partition gpu
# --max-parallel 16 --time 2:00:00"); make waits for them, then writes the report.
PROFILE ?=
# ENGINE=torch runs the methods' PyTorch twins (python/sdd_torch; GPU runs at PyTorch speed), auto: torch
# where torch sees a CUDA device; default: each file's engine: (tfjs).
ENGINE ?=
JOBS ?= auto
EXECUTOR ?=
SLURM_FLAGS ?=
# SET="KEY=VALUE" adds one --set to the table targets' run and report (e.g. SET='method.params.prompt=white_hair').
SET ?=
PFLAG = $(if $(PROFILE),--profile $(PROFILE),) $(if $(ENGINE),--engine $(ENGINE),) $(if $(SET),--set '$(SET)',)
XFLAG = $(if $(EXECUTOR),--executor $(EXECUTOR),) $(SLURM_FLAGS)
TABLE1 = experiments/table1/sdd.yaml experiments/table1/sdedit.yaml experiments/table1/ddib.yaml experiments/table1/diffae.yaml experiments/tradeoff.yaml
TABLE2 = experiments/table1/sdd.yaml experiments/table2/styleclip.yaml
# Table 1 at the paper's scale (#31): the released code's settings on world paper (real checkpoints:
# `sdd checkpoints list`), best on the torch engine with a GPU per run (ENGINE=torch, EXECUTOR=slurm).
# WORLD=paper-random(-tiny) runs the same protocol on seeded random weights (no download); the
# tiny world with PROFILE=tiny is the smoke test: make table1-paper WORLD=paper-random-tiny PROFILE=tiny
TABLE1_PAPER = experiments/paper/sdd.yaml experiments/paper/sdedit.yaml experiments/paper/ddib.yaml experiments/paper/styleclip.yaml
WORLD ?=
WFLAG = $(if $(WORLD),--set world=$(WORLD),)

table1-paper: deps
	$(SDD) run $(TABLE1_PAPER) $(PFLAG) $(WFLAG) --jobs $(JOBS) $(XFLAG) --no-report
	$(SDD) report $(TABLE1_PAPER) $(PFLAG) $(WFLAG) --combine table1-paper

table1: deps
	$(SDD) run $(TABLE1) $(PFLAG) --jobs $(JOBS) $(XFLAG) --no-report
	$(SDD) report $(TABLE1) $(PFLAG) --combine table1

# docs/report-example.png: the quick Table 1 page (a real `make table1 PROFILE=quick` into a temp store),
# screenshot at a 1400 px viewport. Commit the PNG; the runs and pages stay in the temp folder.
report-example: deps
	@d=$$(mktemp -d) && SDD_RUNS=$$d/runs SDD_REPORTS=$$d/reports $(MAKE) --no-print-directory table1 PROFILE=quick && \
	  SDD_RUNS=$$d/runs $(SDD) report $(TABLE1) --profile quick --combine table1 --out $$d/reports --screenshot docs/report-example.png && \
	  echo "runs and pages in $$d"

table2: deps
	$(SDD) run $(TABLE2) $(PFLAG) --jobs $(JOBS) $(XFLAG) --no-report
	$(SDD) report $(TABLE2) $(PFLAG) --combine table2

ablation: deps
	$(SDD) run experiments/ablation.yaml $(PFLAG) --jobs $(JOBS) $(XFLAG)

tradeoff: deps
	$(SDD) run experiments/tradeoff.yaml experiments/table1/sdd.yaml experiments/table1/sdedit.yaml $(PFLAG) --jobs $(JOBS) $(XFLAG) --no-report
	$(SDD) report experiments/tradeoff.yaml experiments/table1/sdd.yaml experiments/table1/sdedit.yaml $(PFLAG) --combine tradeoff

# Paired regression check of a candidate (zoo:DIR | set:K=V;… | store:DIR) against the shipped zoo.
CANDIDATE ?=
regress: deps
	@test -n "$(CANDIDATE)" || { echo "make regress CANDIDATE=zoo:DIR (or weights:MODEL=FILE, set:KEY=VALUE, store:DIR)" >&2; exit 2; }
	$(SDD) regress experiments/regression.yaml --candidate '$(CANDIDATE)' $(PFLAG)

# Retrains every zoo model from scratch in dependency order, one at a time (resumable; see datasets/README.md).
zoo: deps
	$(SDD) zoo train

bench: bench-kernels bench-pool bench-unet bench-train bench-fid bench-time

# SDD on the tfjs and torch engines over 5 seeds (quick row): the engines' difference against the
# seed spread, and the CPU seconds of each (#29). bench/results/engines.json; ~3 min on 2 cores.
BENCH_SCRIPT_bench-engines = engines

# τ_train at --jobs 1 vs --jobs 2 (quick SDD row, medians over repeats; #30): within 15% under
# the calibrated protocol (src/util/calibration.ts). bench/results/tau_jobs.json; ~5 min on 2 cores.
BENCH_SCRIPT_bench-tau = tau_jobs

# Eq. 13–15 on the shipped zoo: SDD vs SDEdit totals and the break-even m (minutes).
BENCH_SCRIPT_bench-time = total_time

BENCH_SCRIPT_bench-kernels = kernels

BENCH_SCRIPT_bench-pool = pool

BENCH_SCRIPT_bench-unet = unet_step

# Each zoo model's data-parallel training step split into worker compute, transfer and host parts.
BENCH_SCRIPT_bench-train = train_step

BENCH_SCRIPT_profile = profile_unet

BENCH_SCRIPT_bench-fid = fid

# The single-script benchmarks: target → bench/<script>.ts (BENCH_SCRIPT_<target> above each).
BENCH_SINGLE = bench-engines bench-tau bench-time bench-kernels bench-pool bench-unet bench-train profile bench-fid bench-attention
$(BENCH_SINGLE): deps
	$(NODE) --import tsx bench/$(BENCH_SCRIPT_$@).ts

clean:
	rm -rf runs reports/*/ bench/results

# tfjs on WebGPU vs PyTorch CUDA (fp32, TF32 off) on the same GPU: U-Net train step, DDIM-50 + CFG,
# an SDD iteration, FID features. Skips (exit 0) without a hardware adapter; bench/gpu.ts has details.
# Then the host-side counts on any adapter (lavapipe too): dispatches, submits, passes, uploads and
# buffers created per U-Net train step and DDIM step (bench/webgpu_counts.ts → bench/results/).
bench-gpu: deps
	$(NODE) --import tsx bench/gpu.ts
	$(NODE) --import tsx bench/webgpu_counts.ts

# The paper's time column (#20, GPU): experiments/paper/{sdd,sdedit,ddib}.yaml --profile time on
# world paper-random (full-size architectures, seeded random weights, no download), then Eq. 13–15
# at m = 100, n = 10 with every τ component, the break-even m and the iteration count for the
# paper's 14.9×, beside the paper and (with DIFFUSERS, ROSINALITY and INSIGHTFACE checkouts) PyTorch
# fp32/fp16 on the same GPU. Smoke run on a CPU:
#   make paper-time PAPER_TIME_FLAGS="--set world=paper-random-tiny --backend wasm" PAPER_TIME_STORE=/tmp/pt
PYTHON ?= python3
PAPER_TIME_STORE ?= runs/paper-time
PAPER_TIME_FLAGS ?= --backend webgpu
PAPER_TIME_TORCH = bench/results/paper_time_torch.json
paper-time: deps
	$(SDD) run experiments/paper/sdd.yaml experiments/paper/sdedit.yaml experiments/paper/ddib.yaml --profile time --jobs 1 --store $(PAPER_TIME_STORE) --no-report $(PAPER_TIME_FLAGS) $(if $(ENGINE),--engine $(ENGINE),)
	@if [ -n "$(DIFFUSERS)" ] && [ -n "$(ROSINALITY)" ] && [ -n "$(INSIGHTFACE)" ]; then \
	  $(PYTHON) bench/paper_time_torch.py --diffusers $(DIFFUSERS) --rosinality $(ROSINALITY) --insightface $(INSIGHTFACE) --device cuda --out $(PAPER_TIME_TORCH); \
	else echo "paper-time: no PyTorch column (set DIFFUSERS, ROSINALITY, INSIGHTFACE to the reference checkouts)"; rm -f $(PAPER_TIME_TORCH); fi
	$(NODE) --import tsx bench/paper_time.ts --store $(PAPER_TIME_STORE) $$(test -f $(PAPER_TIME_TORCH) && echo --torch $(PAPER_TIME_TORCH))

# Full-size StyleGAN2 (FFHQ config-f, synthetic weights) against rosinality's model.py: output and
# W+ gradient, max rel. error and time (ROSINALITY=<checkout>; BACKEND=webgpu on a GPU, cpu here).
bench-stylegan2: deps
	$(PYTHON) tools/make_stylegan2_fixture.py --rosinality $(ROSINALITY) --full --out bench/results/stylegan2-full --device $(if $(filter webgpu,$(BACKEND)),cuda,cpu)
	$(NODE) --import tsx bench/stylegan2_parity.ts bench/results/stylegan2-full --backend $(BACKEND) $(if $(filter cpu,$(BACKEND)),--repeats 0)

# The fused webgpu attention kernel vs the tfjs-ops path at SD v1's shapes, and one SD v1 UNet CFG
# step at 64² with each, beside PyTorch's scaled_dot_product_attention. Skips without a hardware adapter.
BENCH_SCRIPT_bench-attention = attention
