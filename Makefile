# download -> preprocess -> train -> evaluate, on a self-installed Theano/Lasagne stack.
# Every target depends on the virtual environment, which `make install` builds.

PYTHON_BASE ?= $(shell command -v python3.11 || command -v python3)
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed-stamp
SHARED      ?= ../shared
WEIGHTS     ?= weights/bvlc_googlenet.caffemodel
BENCH_BATCH ?= 16

.PHONY: install test bench weights clean-cache help

help:
	@echo "make test        run the test suite (installs everything first)"
	@echo "make weights     download BVLC GoogLeNet weights to $(WEIGHTS)"
	@echo "make bench       print speed figures (img/s, compile times)"

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
	SHARED=$(SHARED) $(PY) -m pipeline.bench --batch $(BENCH_BATCH)

weights: $(WEIGHTS)
$(WEIGHTS): | $(STAMP)
	$(PY) -m pipeline download-weights --out $@

clean-cache:
	rm -rf weights/cache
