# download -> preprocess -> train -> evaluate, on a self-installed Theano/Lasagne stack.
# Every target depends on the virtual environment, which `make install` builds.

PYTHON_BASE ?= $(shell command -v python3.11 || command -v python3)
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed-stamp
SHARED      ?= ../shared
WEIGHTS     ?= weights/bvlc_googlenet.caffemodel
BENCH_BATCH ?= 16

LAYERS      ?= loss3/classifier,prob

.PHONY: install test bench weights forward classify clean-cache help

help:
	@echo "make test        run the test suite (installs everything first)"
	@echo "make weights     download BVLC GoogLeNet weights to $(WEIGHTS)"
	@echo "make bench       print speed figures (img/s, compile times); TORCH=1 adds PyTorch's"
	@echo "make forward     WEIGHTS=f.caffemodel BLOB=in.npy OUT=out.npz [LAYERS=a,b]"
	@echo "make classify    WEIGHTS=f.caffemodel IMAGES='a.jpg b.png'"

install: $(STAMP)

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
	SHARED=$(SHARED) $(PY) -m pytest -q

bench: $(STAMP)
ifeq ($(TORCH),1)
	$(PY) -m pip install -q torch==2.13.0 "setuptools<82"
endif
	SHARED=$(SHARED) $(PY) -m pipeline.bench --batch $(BENCH_BATCH)

forward: $(STAMP)
	$(PY) -m pipeline forward --weights $(WEIGHTS) --blob $(BLOB) --out $(OUT) --layers $(LAYERS)

classify: $(STAMP)
	$(PY) -m pipeline classify --weights $(WEIGHTS) $(IMAGES)

weights: $(WEIGHTS)
$(WEIGHTS): | $(STAMP)
	$(PY) -m pipeline download-weights --out $@

clean-cache:
	rm -rf weights/cache
