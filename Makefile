# Conveyor: every user-facing target bootstraps .venv from requirements.txt first.
# Fresh clone:  make sim   (main demo)   |   make test   (test suite)   |   make help   (all targets)
# Every variable below can be overridden on the command line, e.g. `make sim M=1024 SEED=7`.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# ---- toolchain ---------------------------------------------------------------------------------------
# Interpreter that creates the venv (3.11 or newer).
PYTHON   ?= python3
VENV     ?= .venv
VENV_BIN := $(VENV)/bin
VENV_PY  ?= $(VENV_BIN)/python
CONVEYOR ?= $(VENV_BIN)/conveyor
STAMP    := $(VENV)/.stamp
PIP_FLAGS ?= --disable-pip-version-check --no-input --progress-bar off
# Recipes run with the venv's bin first on PATH, so the yowasp-* tools (yosys, nextpnr, ecppack, icepack)
# are found by amaranth-boards and friends without activating the venv.
RUN      := PATH="$(abspath $(VENV_BIN)):$$PATH"

# ---- make sim: the main demos (the digits MLP from the compiler; an MLP step from assembly; an LM) -------
CONFIG ?= small
DIGITS_BATCH ?= 64
M      ?= 256
K      ?= 64
HIDDEN ?= 64
N      ?= 16
SEED   ?= 1
SIM_ARGS ?=
# ...and a language model (trained here on first use, cached under build/lm) generating text on the RTL
LM_ARCH   ?= gpt
LM_TOKENS ?= 16
LM_PROMPT ?= The

# ---- make waves: the same demo, smaller, with a waveform dump, a GTKWave layout and a PNG ----------------
WAVES_CONFIG ?= tiny
WAVES_M      ?= 16
WAVES_K      ?= 8
WAVES_HIDDEN ?= 8
WAVES_N      ?= 4

# ---- make gen: Verilog of the MXU ------------------------------------------------------------------------
GEN_ROWS ?= 16
GEN_COLS ?= 16
GEN_OUT  ?= build/verilog

# ---- make fpga: synthesis + place-and-route reports ----------------------------------------------------
FPGA_REPORTS ?= fpga/reports
ECP5_ROWS    ?= 8
ECP5_COLS    ?= 8
# The largest UP5K tile at >= 30 MHz: 7x2 with LUT multipliers (14 MACs, 38.6 MHz; 8x2 and 5x3 do not
# fit). With its 8 DSPs only 8 MACs fit, and nextpnr-ice40 does not time paths through the DSPs.
ICE40_ROWS   ?= 7
ICE40_COLS   ?= 2
ICE40_ARGS   ?= --no-dsp --acc-depth 64

# ---- make bench ----------------------------------------------------------------------------------------
BENCH_DIR  ?= bench/results
BENCH_ARGS ?=
CHIP_BENCH_ARGS ?=

# ---- make test -----------------------------------------------------------------------------------------
# pytest-xdist workers: 2 on a machine with 2+ cores, none (-n 0) on a single core.
NPROC      := $(shell nproc 2>/dev/null || echo 1)
TEST_JOBS  ?= $(shell [ $(NPROC) -ge 2 ] && echo 2 || echo 0)
TESTS      ?=
PYTEST_ARGS ?=

# ---- make regress / make coverage ------------------------------------------------------------------------
# Constrained-random programs on the RTL (Verilator) against golden: seeds START .. START+SEEDS-1 on chip
# REGRESS_CONFIG (python -m verify.regress). A failure prints a one-line command that reproduces it.
SEEDS          ?= 200
START          ?= 0
REGRESS_CONFIG ?= tiny
REGRESS_JOBS   ?= 1
REGRESS_BATCH  ?= 10
REGRESS_ARGS   ?=
# Verilator line + toggle coverage of rtl/ (python -m verify.coverage): build/coverage/report.txt, docs/coverage.md
COVERAGE_SEEDS ?= 200
COVERAGE_ARGS  ?=

.PHONY: help venv sim waves test gen fpga bench clean distclean regress coverage mutants formal lint

help: ## List the targets (this text)
	@echo "Conveyor: make targets (each one bootstraps $(VENV) from requirements.txt on first use)"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_.-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "Variables (override as NAME=value): CONFIG DIGITS_BATCH M K HIDDEN N SEED SIM_ARGS, WAVES_{CONFIG,M,K,HIDDEN,N},"
	@echo "  GEN_{ROWS,COLS,OUT}, ECP5_{ROWS,COLS}, ICE40_{ROWS,COLS}, FPGA_REPORTS, TEST_JOBS, TESTS,"
	@echo "  PYTEST_ARGS, BENCH_ARGS, CHIP_BENCH_ARGS, SEEDS, START, REGRESS_{CONFIG,JOBS,BATCH,ARGS},"
	@echo "  COVERAGE_{SEEDS,ARGS}, MUTANTS, MUTANT_JOBS, FORMAL, FORMAL_JOBS, PYTHON, VENV"

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "error: Conveyor needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1). Run make PYTHON=python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install $(PIP_FLAGS) -r requirements.txt
	$(VENV_PY) -m pip install $(PIP_FLAGS) --no-deps -e .
	$(VENV_PY) -m pip check
	@touch $@

venv: $(STAMP) ## Create/refresh .venv from requirements.txt (done automatically by every target)

sim: $(STAMP) ## Main demos on chip CONFIG: the digits MLP compiled end to end, an MLP step from assembly, then a language model generating text
	$(RUN) $(CONVEYOR) demo digits --config $(CONFIG) --batch $(DIGITS_BATCH) --seed $(SEED) $(SIM_ARGS)
	$(RUN) $(CONVEYOR) demo mlp --config $(CONFIG) --m $(M) --k $(K) --hidden $(HIDDEN) --n $(N) --seed $(SEED) $(SIM_ARGS)
	$(RUN) $(CONVEYOR) demo lm --config $(CONFIG) --arch $(LM_ARCH) --tokens $(LM_TOKENS) --prompt "$(LM_PROMPT)" $(SIM_ARGS)

waves: $(STAMP) ## The demo on chip WAVES_CONFIG with a VCD, a .gtkw grouped by slice and a PNG of the first cycles
	$(RUN) $(CONVEYOR) demo mlp --config $(WAVES_CONFIG) --m $(WAVES_M) --k $(WAVES_K) --hidden $(WAVES_HIDDEN) --n $(WAVES_N) --seed $(SEED) --waves $(SIM_ARGS)

test: $(STAMP) ## Run the test suite (pytest, TEST_JOBS xdist workers; TESTS=… PYTEST_ARGS=… to select)
	@$(RUN) $(VENV_PY) -m pytest -n $(TEST_JOBS) $(PYTEST_ARGS) $(TESTS); rc=$$?; \
	if [ $$rc -eq 5 ]; then \
	  echo "error: no tests collected (pytest exit code 5), so nothing was tested; check TESTS/PYTEST_ARGS and tests/" >&2; \
	  exit 1; \
	fi; \
	exit $$rc

gen: $(STAMP) ## Generate the Verilog of chip CONFIG and of a GEN_ROWS×GEN_COLS MXU into GEN_OUT
	$(RUN) $(CONVEYOR) gen chip --config $(CONFIG) -o $(GEN_OUT)
	$(RUN) $(CONVEYOR) gen mxu --rows $(GEN_ROWS) --cols $(GEN_COLS) -o $(GEN_OUT)

fpga: $(STAMP) ## Synthesize + place-and-route the tile for ECP5-85F and iCE40 UP5K; JSON reports in FPGA_REPORTS
	@mkdir -p $(FPGA_REPORTS)
	$(RUN) $(CONVEYOR) fpga --target ecp5-85f --rows $(ECP5_ROWS) --cols $(ECP5_COLS) --json $(FPGA_REPORTS)/ecp5-85f.json
	$(RUN) $(CONVEYOR) fpga --target ice40-up5k --rows $(ICE40_ROWS) --cols $(ICE40_COLS) $(ICE40_ARGS) --json $(FPGA_REPORTS)/ice40-up5k.json

bench: $(STAMP) ## Benchmarks (python -m bench.mxu, bench.chip, bench.sweep, bench.system, bench.lm_compile, bench.lm_chips): bench/results/*.json
	@mkdir -p $(BENCH_DIR)
	$(RUN) $(VENV_PY) -m bench.mxu $(BENCH_ARGS)
	$(RUN) $(VENV_PY) -m bench.chip $(CHIP_BENCH_ARGS)
	$(RUN) $(VENV_PY) -m bench.sweep
	$(RUN) $(VENV_PY) -m bench.system
	$(RUN) $(VENV_PY) -m bench.lm_compile
	$(RUN) $(VENV_PY) -m bench.lm_chips
	$(RUN) $(VENV_PY) -m bench.lm_chips --weight-slots 16 --output $(BENCH_DIR)/lm_chips_s16.json

regress: $(STAMP) ## Random regression: SEEDS seeds from START on REGRESS_CONFIG, RTL vs golden (REGRESS_JOBS)
	$(RUN) $(VENV_PY) -m verify.regress --seeds $(SEEDS) --start $(START) --config $(REGRESS_CONFIG) --jobs $(REGRESS_JOBS) --batch $(REGRESS_BATCH) $(REGRESS_ARGS)

coverage: $(STAMP) ## Verilator line/toggle coverage of rtl/: build/coverage/report.txt (+ .json), docs/coverage.md
	$(RUN) $(VENV_PY) -m verify.coverage --seeds $(COVERAGE_SEEDS) $(COVERAGE_ARGS)

# Mutation check (python -m mutants, docs/mutants.md): every bug of mutants/list.py, applied to a copy of the
# sources under build/mutants/, must be caught by its killers. MUTANTS=… selects some; MUTANT_JOBS of them run
# at once (default TEST_JOBS).
MUTANTS     ?=
MUTANT_JOBS ?= $(TEST_JOBS)
mutants: $(STAMP) ## Mutation check: each deliberate RTL bug of mutants/list.py must be caught (MUTANTS=… MUTANT_JOBS=…)
	$(RUN) nice $(VENV_PY) -m mutants --jobs $(MUTANT_JOBS) $(MUTANTS)

# Formal proofs (python -m formal.run, docs/formal.md): SymbiYosys k-induction + cover of the host edge, the
# response FIFO, the ICU, the MXU weight buffer, the stream registers and the link delay line. FORMAL=… selects some; FORMAL_JOBS at once.
FORMAL      ?=
FORMAL_JOBS ?= 1
formal: $(STAMP) ## Formal proofs of rtl/ (SymbiYosys: k-induction + cover; FORMAL=… FORMAL_JOBS=…)
	$(RUN) nice $(VENV_PY) -m formal.run --jobs $(FORMAL_JOBS) $(FORMAL)

lint: $(STAMP) ## Lint: ruff (whole repo), mypy (golden/ compiler/ sim/), Verilator -Wall on the chips' and MXU's Verilog
	$(RUN) $(VENV_PY) -m ruff check .
	$(RUN) $(VENV_PY) -m mypy
	$(RUN) nice $(VENV_PY) -m verify.lint

clean: ## Remove build outputs (build/, sim_build/, reports, caches); keeps .venv
	rm -rf build sim_build obj_dir $(FPGA_REPORTS) results.xml .pytest_cache
	rm -f $(BENCH_DIR)/*.json
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name sim_build \) -type d -prune -exec rm -rf {} +

distclean: clean ## clean, and also remove .venv, .hypothesis and *.egg-info
	rm -rf $(VENV) .hypothesis *.egg-info
