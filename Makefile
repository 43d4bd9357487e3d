# sdd-bench — every target installs dependencies first when node_modules is missing or stale.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE ?= node
SDD := $(NODE) bin/sdd.mjs
STAMP := node_modules/.sdd-installed
TESTS = $(shell find src test baselines datasets -name '*.test.ts' 2>/dev/null | sort)
# node:test runs files in parallel subprocesses; two cores here.
TEST_CONCURRENCY ?= 2

.PHONY: help deps test typecheck unit table1 bench bench-kernels bench-pool bench-unet bench-fid profile doctor schema clean

help:
	@echo "make table1    main job: Table 1 on the embedded toyfaces world"
	@echo "make test      typecheck + the whole test suite (node:test)"
	@echo "make bench     benchmarks (results in bench/results/)"
	@echo "make doctor    which compute backend runs here and why"

$(STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: $(STAMP)

typecheck: deps
	npx tsc --noEmit -p tsconfig.json

unit: deps
	$(NODE) --import tsx --test --test-concurrency=$(TEST_CONCURRENCY) $(TESTS)

test: typecheck unit

doctor: deps
	$(SDD) doctor

schema: deps
	$(SDD) schema > experiment.schema.json

# Table 1 needs the toyfaces zoo (#3), metrics (#4), reports (#5), SDD (#6) and baselines (#7).
table1: deps
	@$(SDD) doctor
	@echo "make table1: not available yet — it needs the SDD method and the baselines (issues #3-#7)." >&2
	@exit 2

bench: bench-kernels bench-pool bench-unet bench-fid

bench-kernels: deps
	$(NODE) --import tsx bench/kernels.ts

bench-pool: deps
	$(NODE) --import tsx bench/pool.ts

bench-unet: deps
	$(NODE) --import tsx bench/unet_step.ts

clean:
	rm -rf runs reports/*/ bench/results

profile: deps
	$(NODE) --import tsx bench/profile_unet.ts

bench-fid: deps
	$(NODE) --import tsx bench/fid.ts
