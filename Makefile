# download -> preprocess -> train -> evaluate, on a self-installed Theano/Lasagne stack.
# Every target depends on the virtual environment, which `make install` builds.

# the command as its user typed it (the outermost make's goals and variables), recorded
# beside every result it makes (pipeline.runs.rundir.command_line)
ifndef DRT_MAKE_COMMAND
export DRT_MAKE_COMMAND := make $(MAKECMDGOALS) $(MAKEOVERRIDES)
endif

PYTHON_BASE ?= $(shell command -v python3.11 || command -v python3)
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed-stamp
SHARED      ?= ../shared
WEIGHTS     ?= weights/bvlc_googlenet.caffemodel
BENCH_BATCH ?= 16
# DEVICE=cuda: every stage on Theano's gpuarray back end (models/device.py)
DEVICE      ?= cpu
export DEVICE
CACHE_DIR   := $(or $(DRT_CACHE),$(HOME)/.cache/dr-transfer)
# the GPU part (DEVICE=cuda|openclP:D): its variables, the library path, its targets
include gpu.mk

LAYERS      ?= loss3/classifier,prob
# DATA: a folder of images + labels.csv; the default is the embedded IDRiD sample;
# DATA=kaggle downloads Kaggle's training set into data/kaggle
DATA        ?= data/sample
DATA_DIR    := $(if $(filter kaggle,$(DATA)),data/kaggle,$(DATA))
SCENARIO    ?= 4
RUNS        ?= runs
TTA         ?= 1

DATASET     := data/processed/$(notdir $(abspath $(DATA_DIR))).h5
LABELS      := $(firstword $(wildcard $(DATA_DIR)/labels.csv $(DATA_DIR)/trainLabels.csv) $(DATA_DIR)/trainLabels.csv)
RUN         ?= $(RUNS)/$(SCENARIO)-latest
SEEDS       ?=
FOLDS       ?= 5
OPERATING_POINT ?= sensitivity:0.87
# Scratch starts from random weights: it needs no download.
NEEDS_WEIGHTS := $(if $(filter scratch,$(SCENARIO)),,$(WEIGHTS))
OVERRIDES   := $(if $(LR),--set solver.base_lr=$(LR)) $(if $(EPOCHS),--set epochs=$(EPOCHS)) \
               $(foreach s,$(SET),--set $(s))
TTA_FLAG    := $(if $(filter 1,$(TTA)),--tta)

.PHONY: install test test-gpu test-bundle bundle device-check bench profile weights forward classify clean-cache help \
        download preprocess train evaluate predict kaggle-test report results cv reproduce reproduce-plan \
        demo sweep ambiguities fourcases test-slurm

help:
	@echo "the chain (DATA=data/sample by default; DATA=kaggle downloads; DATA=dir any folder):"
	@echo "  make reproduce   every scenario of the claims -> evaluate -> report"
	@echo "                   [WEIGHTS=file.caffemodel SCENARIO='1 2 3 4 scratch' SEEDS=0,1]"
	@echo "                   CV=5: and by 5-fold CV by patient, the claims on every image"
	@echo "                   [ENGINE=local|slurm -jN]"
	@echo "  make reproduce-plan  only the line saying what reproduce would run, how long"
	@echo "  make download    DATA=kaggle: Kaggle's training and test sets into data/kaggle [TEST_SET=0]"
	@echo "  make preprocess  DATA -> data/processed/<name>.h5"
	@echo "  make weights     download the BVLC GoogLeNet weights to $(WEIGHTS)"
	@echo "  make train       SCENARIO=4 [SEEDS=0,1,2 LR=0.0005 EPOCHS=20 SET='key=value ...']"
	@echo "  make evaluate    [RUN=runs/4-latest DATA=other_dir: external validation] [TTA=0]"
	@echo "                   [UNCERTAINTY=mc:20|ensemble MEASURE=entropy|sd]: referral of the uncertain"
	@echo "  make predict     RUN=runs/4-latest IMAGES='dir a.jpeg' [OUT=f.csv HEATMAPS=dir]: screen"
	@echo "                   [UNCERTAINTY=mc:20|ensemble REFER=0.2]: refer the uncertain images"
	@echo "  make kaggle-test RUN=runs/4-levels-latest DATA=test_dir [SOLUTION=f.csv]: submission"
	@echo "  make report      the reproduction report of every evaluated run of DATA"
	@echo "  make results     rewrite the README's result tables from the runs [SECTION='four cases']"
	@echo "  make cv          SCENARIO=1 FOLDS=5 [UNCERTAINTY=mc:20]: cross-validation by patient"
	@echo "  make sweep       SCENARIOS='1 3' FOLDS=5 SEEDS=0,1 [ENGINE=slurm|local, -jN]"
	@echo "  make ambiguities every reading of what the post leaves unsaid [SEEDS=0,1 ENGINE=slurm -jN]"
	@echo "  make fourcases   the four cases: similar and different data x scenarios x sizes x folds"
	@echo "                   [SIZES=0.125,1 CV=5 SEEDS=0 SCENARIO='1 3' DATA_SIMILAR= DATA_DIFFERENT="
	@echo "                   GRID=file.toml ENGINE=local|slurm -jN; SUMMARY=1: the summary of the cells done]"
	@echo "  make demo        offline: generated fundus images -> scenario 1 -> report"
	@echo "tests and tools:"
	@echo "  make install     .venv with the pinned packages (DEVICE=cuda: and Debian's pygpu)"
	@echo "  make test        the test suite (installs everything first)"
	@echo "  make test-slurm  a real one-node SLURM runs a small sweep (root on Debian)"
	@echo "  make test-bundle the offline GPU bundle, built and run on the CPU"
	@echo "  make test-gpu    the GPU tests (DEVICE=cuda; one line and exit 0 without a GPU)"
	@echo "  make test-cuda-compile  every CUDA kernel through NVRTC 13.0 and ptxas (sm_90), no GPU"
	@echo "  make bundle      one tarball for an offline GPU machine (docs/GPU.md)"
	@echo "  make device-check DEVICE=cuda: is the GPU usable (one line if not)"
	@echo "  make bench       speed figures and the BLAS kernel; PEERS=1 adds PyTorch (eager, compiled) and OpenVINO"
	@echo "  make profile     Theano's per-op profile of scenario 4's training step; PEERS=1 adds PyTorch's"
	@echo "  make forward     WEIGHTS=f.caffemodel BLOB=in.npy OUT=out.npz [LAYERS=a,b]"
	@echo "  make classify    WEIGHTS=f.caffemodel IMAGES='a.jpg b.png'"
	@echo "  make clean-cache remove the imported-weights cache (weights/cache)"
	@echo "DEVICE=cuda        any computing step on the GPU (make install DEVICE=cuda first)"

install: $(STAMP) $(if $(ON_GPU),$(GPU_STAMP))

# Debian's OpenBLAS is Theano's BLAS here; without it Theano falls back to
# NumPy's C-API (slower, OpenMP off). Installed when we may, skipped otherwise.
$(STAMP): requirements.txt requirements-test.txt setup.py
	@if ! ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so '; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing libopenblas-dev (Debian)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev; \
	  else echo "warning: libopenblas-dev missing and cannot apt-get it: Theano runs without BLAS (slower)"; fi; \
	fi
	test -x $(PY) || $(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip<26" "wheel<1"
	$(PY) -m pip install -q -r requirements.txt -r requirements-test.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $@

test: $(STAMP)
	SHARED=$(SHARED) $(PY) -m pytest -q -m "not slurm and not gpu and not bundle"

# PEERS=1 (or TORCH=1): on the CPU, PyTorch eager and torch.compile and OpenVINO from
# their own venv (build/peers, requirements-peers.txt), in the same run, median of 5
PEERS ?= $(TORCH)
PEERS_VENV := build/peers
PEERS_STAMP := $(PEERS_VENV)/.installed-stamp
$(PEERS_STAMP): requirements-peers.txt
	test -x $(PEERS_VENV)/bin/python || $(PYTHON_BASE) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install -q -r requirements-peers.txt
	touch $@

bench: $(DEVICE_CHECK) $(STAMP) $(if $(and $(PEERS),$(if $(ON_GPU),,1)),$(PEERS_STAMP))
	SHARED=$(SHARED) PEERS_PYTHON=$(abspath $(PEERS_VENV))/bin/python \
	  $(if $(ON_GPU),,TORCH_PYTHON=$(abspath $(PEERS_VENV))/bin/python) \
	  $(PY) -m tools.bench --batch $(BENCH_BATCH) $(if $(and $(PEERS),$(if $(ON_GPU),,1)),--peers --repeats 5)

# Theano's per-op profile of scenario 4's training step (batch BENCH_BATCH); on the
# GPU, CUDA_LAUNCH_BLOCKING=1 makes each op's time its own kernels'; on the CPU, with
# PEERS=1, PyTorch's training step by op class beside it
profile: $(DEVICE_CHECK) $(STAMP) $(if $(and $(PEERS),$(if $(ON_GPU),,1)),$(PEERS_STAMP))
	$(if $(ON_GPU),CUDA_LAUNCH_BLOCKING=1,TORCH_PYTHON=$(abspath $(PEERS_VENV))/bin/python) \
	  $(PY) -m tools.bench --batch $(BENCH_BATCH) --profile

forward: $(DEVICE_CHECK) $(STAMP)
	$(PY) -m pipeline forward --weights $(WEIGHTS) --blob $(BLOB) --out $(OUT) --layers $(LAYERS)

classify: $(DEVICE_CHECK) $(STAMP)
	$(PY) -m pipeline classify --weights $(WEIGHTS) $(IMAGES)

weights: $(WEIGHTS)
$(WEIGHTS): | $(STAMP)
	$(PY) -m pipeline download-weights --out $@

clean-cache:
	rm -rf weights/cache

# ---- the chain: each step is skipped when its output is newer than its inputs
# Only DATA=kaggle is downloaded: any other directory must already hold its
# images and labels (a typo in DATA must not start a download into the typo).
# make download: the training set and the test set (TEST_SET=0: not the test
# set); the chain itself fetches only the training set.
NO_DATA = echo "error: $(DATA): no labels.csv or trainLabels.csv (DATA= must name a directory with the images and their labels, or be kaggle)" >&2; exit 2
download: | $(STAMP)
ifeq ($(DATA),kaggle)
	$(PY) -m pipeline download --out $(DATA_DIR) $(if $(filter 0,$(TEST_SET)),--train-only)
else
	@test -f $(LABELS) || { $(NO_DATA); }
endif
$(DATA_DIR)/trainLabels.csv: | $(STAMP)
	@if [ "$(DATA)" != "kaggle" ]; then $(NO_DATA); fi
	$(PY) -m pipeline download --out $(DATA_DIR) --train-only

preprocess: $(DATASET)
$(DATASET): $(LABELS) | $(STAMP)
	$(PY) -m pipeline preprocess --data $(DATA_DIR) --out $@

# `make train` always runs the trainer: it resumes an unfinished run started with
# the same config, data and weights, else starts a new one (one per seed of SEEDS).
# `make reproduce` reuses a finished run only when its config (scenario file plus
# overrides), data and weights are exactly the ones asked for: the freshness test
# is the pipeline's, not file times.
comma       := ,
SEED_LIST   := $(subst $(comma), ,$(SEEDS))
TRAIN_ARGS   = --scenario $(SCENARIO) --data $(DATASET) --weights $(WEIGHTS) --runs $(RUNS) \
               $(OVERRIDES)
STATS_ARGS   = $(TTA_FLAG) --operating-point $(OPERATING_POINT)
train: $(DEVICE_CHECK) $(DATASET) $(NEEDS_WEIGHTS) | $(STAMP)
	$(if $(SEEDS),for s in $(SEED_LIST); do $(PY) -m pipeline train $(TRAIN_ARGS) --set seed=$$s || exit $$?; done,$(PY) -m pipeline train $(TRAIN_ARGS))

# RUN=runs/4-latest DATA=other_dir: external validation on every image of other_dir
# UNCERTAINTY=mc:T|ensemble: also the referral of the most uncertain test images
evaluate: $(DEVICE_CHECK) $(DATASET) | $(STAMP)
	$(PY) -m pipeline evaluate --run $(RUN) --data $(DATASET) --reuse $(STATS_ARGS) \
	  $(if $(UNCERTAINTY),--uncertainty $(UNCERTAINTY)) $(if $(MEASURE),--measure $(MEASURE))

# RUN=runs/4-latest IMAGES='folder a.jpeg' [OUT=file.csv] [HEATMAPS=dir]: screen new images
# [UNCERTAINTY=mc:T|ensemble [REFER=0.2]]: uncertainty and refer_to_grader columns
predict: $(DEVICE_CHECK) | $(STAMP)
	$(PY) -m pipeline predict --run $(RUN) $(IMAGES) $(if $(OUT),--out $(OUT)) \
	  $(if $(HEATMAPS),--heatmaps $(HEATMAPS)) $(if $(UNCERTAINTY),--uncertainty $(UNCERTAINTY)) $(if $(MEASURE),--measure $(MEASURE)) \
	  $(if $(REFER),--refer $(REFER))

# RUN=runs/4-levels-latest DATA=<Kaggle's test images> [SOLUTION=retinopathy_solution.csv]
kaggle-test: $(DEVICE_CHECK) | $(STAMP)
	$(PY) -m pipeline kaggle-test --run $(RUN) --data $(DATA_DIR) $(if $(SOLUTION),--solution $(SOLUTION))

report: $(DATASET) | $(STAMP)
	$(PY) -m pipeline report --runs $(RUNS) --data $(DATASET)

# the README's result tables, rewritten from the runs (not typed); SECTION='four cases':
# that section only, the others left as they stand
results: $(DATASET) | $(STAMP)
	$(PY) -m pipeline report --runs $(RUNS) --data $(DATASET) --readme README.md \
	  $(if $(SECTION),--readme-section "$(SECTION)")

# the folder of `make reproduce CV=k`'s fold runs; `make cv` reuses those of FOLDS
cv-sweep = $(RUNS)/cv-k$(1)
cv: $(DEVICE_CHECK) $(DATASET) $(NEEDS_WEIGHTS) | $(STAMP)
	$(PY) -m pipeline cv $(TRAIN_ARGS) --folds $(FOLDS) $(STATS_ARGS) \
	  $(if $(UNCERTAINTY),--uncertainty $(UNCERTAINTY)) $(if $(MEASURE),--measure $(MEASURE)) \
	  $(foreach d,$(wildcard $(call cv-sweep,$(FOLDS))),--reuse-from $(d))

# every scenario the claims need (1 2 3 4 scratch) unless SCENARIO= names some; the
# first line says what will run on which data and about how long
REPRODUCE_ARGS = $(subst --scenario $(SCENARIO),$(if $(filter command line environment,\
                 $(origin SCENARIO)),--scenario "$(SCENARIO)"),$(TRAIN_ARGS)) \
                 --seeds "$(SEEDS)" $(STATS_ARGS)
# CV=5: and every scenario by 5-fold cross-validation by patient, the folds planned as a
# sweep in runs/cv-k5 (ENGINE=local|slurm, -jN; finished runs reused from runs/); the
# claims are then decided on the pooled out-of-fold predictions of every image
CV          ?=
CV_RUNS      = $(call cv-sweep,$(CV))
CV_SCENARIOS = $(if $(filter command line environment,$(origin SCENARIO)),$(SCENARIO),claims)
reproduce-plan: | $(STAMP)
	@$(PY) -m pipeline reproduce $(REPRODUCE_ARGS) --plan $(LABELS) $(if $(CV),--cv $(CV))
reproduce: reproduce-plan $(DEVICE_CHECK) $(DATASET) $(NEEDS_WEIGHTS) | $(STAMP)
	$(PY) -m pipeline reproduce $(REPRODUCE_ARGS)
ifneq ($(CV),)
	$(PY) -m pipeline sweep plan --runs $(CV_RUNS) --scenarios "$(CV_SCENARIOS)" --folds $(CV) \
	  $(if $(NEEDS_WEIGHTS),--weights $(WEIGHTS)) $(PLAN_ARGS)
	$(call run-plan,$(CV_RUNS))
	$(PY) -m pipeline report --runs $(RUNS) --data $(DATASET)
endif

# ---- sweeps: SCENARIOS x FOLDS x SEEDS, here (make -jN sweep) or as a SLURM job array
SCENARIOS   ?= 1 3 4 scratch
ENGINE      ?= local
SWEEP_RUNS  ?= $(RUNS)/sweep
SLURM_CPUS  ?= 2
SLURM_MEM   ?= 8G
SLURM_TIME  ?= 04:00:00
SLURM_LIMIT ?= 0
PLAN_ARGS    = --seeds $(or $(SEEDS),0) --data $(DATASET) $(OVERRIDES) $(TTA_FLAG) \
               --operating-point $(OPERATING_POINT) --reuse-from $(RUNS) \
               --device $(DEVICE) --cpus $(SLURM_CPUS) --mem $(SLURM_MEM) --time $(SLURM_TIME) \
               --limit $(SLURM_LIMIT)
# $(call run-plan,runs dir): the planned sweep, as a SLURM job array or here (-jN)
run-plan = $(if $(filter slurm,$(ENGINE)),$(PY) -m pipeline sweep submit --runs $(1),\
           +$(MAKE) --no-print-directory -f $(1)/tasks.mk)
sweep: $(DATASET) $(NEEDS_WEIGHTS) | $(STAMP)
	$(PY) -m pipeline sweep plan --runs $(SWEEP_RUNS) --scenarios "$(SCENARIOS)" \
	  --folds $(if $(filter command line,$(origin FOLDS)),$(FOLDS),0) \
	  $(if $(NEEDS_WEIGHTS),--weights $(WEIGHTS)) $(PLAN_ARGS)
	$(call run-plan,$(SWEEP_RUNS))

# ---- what the post leaves unsaid: every reading of scenarios/ambiguities.toml, one
# change at a time from scenario 4 (and the claims' partners where a reading applies
# to them), through the sweep engine; the report's "How much the unstated choices matter"
AMBIGUITY_FILE ?= scenarios/ambiguities.toml
AMBIGUITY_RUNS ?= $(RUNS)/ambiguities
ambiguities: $(DATASET) $(NEEDS_WEIGHTS) | $(STAMP)
	$(PY) -m pipeline sweep plan --ambiguities $(AMBIGUITY_FILE) --runs $(AMBIGUITY_RUNS) \
	  --images $(DATA_DIR) $(if $(NEEDS_WEIGHTS),--weights $(WEIGHTS)) $(PLAN_ARGS)
	$(call run-plan,$(AMBIGUITY_RUNS))

# ---- the four transfer-learning cases: both datasets (similar to ImageNet: data/caltech;
# unlike it: data/sample) x scenarios x training sizes x folds, scenarios/fourcases.toml;
# the full-size fundus folds of make reproduce CV=5 are reused. Every evaluated run's
# evidence (no model) is kept in FOURCASES_KEEP, in the repository, and restored from it
# on a fresh clone: the grid outlives a machine (FOURCASES_KEEP= keeps nothing)
FOURCASES_KEEP ?= results/fourcases
FOURCASES_ARGS = $(if $(SIZES),--sizes $(SIZES)) $(if $(CV),--folds $(CV)) \
                 $(if $(SEEDS),--seeds $(SEEDS)) \
                 $(if $(filter command line,$(origin SCENARIO)),--scenarios "$(SCENARIO)") \
                 $(if $(DATA_SIMILAR),--data-similar $(DATA_SIMILAR)) \
                 $(if $(DATA_DIFFERENT),--data-different $(DATA_DIFFERENT)) \
                 $(if $(DATASETS),--datasets "$(DATASETS)") \
                 $(if $(GRID),--grid $(GRID)) --weights $(WEIGHTS) --runs $(RUNS) \
                 $(if $(FOURCASES_KEEP),--keep $(FOURCASES_KEEP))
# ENGINE=slurm, or ENGINE=local -jN: the grid as a sweep plan in $(RUNS)/fourcases, run
# by the sweep engine, its finish step evaluating every run and summarising; without
# ENGINE, one run after another in one process
fourcases: $(DEVICE_CHECK) $(WEIGHTS) | $(STAMP)
ifeq ($(origin ENGINE),command line)
	$(PY) -m pipeline fourcases $(FOURCASES_ARGS) --sweep --device $(DEVICE) \
	  --cpus $(SLURM_CPUS) --mem $(SLURM_MEM) --time $(SLURM_TIME) --limit $(SLURM_LIMIT)
	$(call run-plan,$(RUNS)/fourcases)
else
	$(PY) -m pipeline fourcases $(FOURCASES_ARGS) $(if $(SUMMARY),--summarise-only)
endif

# a real single-node SLURM (slurm-wlm + munge, installed when root on Debian) runs
# a small sweep; skips with one line where it cannot
test-slurm: $(STAMP)
	SHARED=$(SHARED) $(PY) -m pytest -q -m slurm tests/test_slurm.py

# ---- offline demo: generated images, scenario 1, BVLC weights if present
DEMO_WEIGHTS := $(wildcard $(WEIGHTS))
demo: | $(STAMP)
	test -f data/demo/labels.csv || $(PY) -m pipeline synthetic --out data/demo --patients 60
	$(MAKE) --no-print-directory reproduce DATA=data/demo SCENARIO=1 RUNS=runs/demo \
	  WEIGHTS=$(or $(DEMO_WEIGHTS),none) NEEDS_WEIGHTS=$(DEMO_WEIGHTS) SET="$(if $(DEMO_WEIGHTS),,init=random) $(SET)"
