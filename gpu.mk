# The GPU part of the Makefile (included by it): DEVICE=cuda|cudaN runs every stage on
# Theano's gpuarray back end, DEVICE=openclP:D the same on OpenCL (POCL on a CPU, for
# tests); docs/GPU.md. On DEVICE=cpu nothing here is computed but the targets' names.
ON_GPU      := $(filter cuda% opencl%,$(DEVICE))
ifneq ($(ON_GPU),)
GPU_STAMP   := $(VENV)/.gpu-stamp-$(if $(filter opencl%,$(DEVICE)),opencl,cuda)
DEBIAN_GPU  := python3-pygpu libgpuarray3 libgpuarray-dev \
               $(if $(filter opencl%,$(DEVICE)),pocl-opencl-icd ocl-icd-opencl-dev libclblast-dev)
# .venv/lib: libgpuarray itself when it came with `make bundle`
GPU_LIBS    := $(abspath $(VENV))/lib
ifneq ($(filter cuda%,$(DEVICE)),)
# libgpuarray dlopens libcuda.so, libnvrtc.so, libcublas.so: links with those
# names, made from what this machine has, first on the path before Python starts
GPU_LIBS    := $(shell $(PYTHON_BASE) models/cudalibs.py "$(CACHE_DIR)/cuda-libs"):$(GPU_LIBS)
endif
export LD_LIBRARY_PATH := $(GPU_LIBS)$(if $(LD_LIBRARY_PATH),:$(LD_LIBRARY_PATH))
endif


ifneq ($(ON_GPU),)
# Debian 12's pygpu/libgpuarray 0.7.6 (what Theano 1.0.5 needs; PyPI has none),
# installed when we may, then made importable from .venv (a link to its package)
$(GPU_STAMP): $(STAMP) requirements-gpu.txt
	@if ! { $(PY) -c "import pygpu" 2>/dev/null || [ -d /usr/lib/python3/dist-packages/pygpu ]; } \
	    || { [ -n "$(filter opencl%,$(DEVICE))" ] && ! ldconfig -p | grep -q 'libclblast\.so '; }; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $(DEBIAN_GPU) (Debian)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBIAN_GPU); \
	  else echo "warning: $(DEBIAN_GPU) missing and cannot apt-get them: DEVICE=$(DEVICE) cannot run here"; fi; \
	fi
	@if ! $(PY) -c "import pygpu" 2>/dev/null && [ -d /usr/lib/python3/dist-packages/pygpu ]; then \
	  ln -sfn /usr/lib/python3/dist-packages/pygpu "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/pygpu"; fi
	$(PY) -m pip install -q -r requirements-gpu.txt
	$(PY) -c "import pygpu; print('pygpu', pygpu.__version__, 'API', pygpu.gpuarray.api_version())"
	touch $@
endif

# make bundle, unpacked and run in a bare environment (CPU checks of the offline path)
test-bundle: $(STAMP)
	SHARED=$(SHARED) $(PY) -m pytest -q -m bundle tests/tools/test_bundle.py

# one tarball for an offline GPU machine: Python 3.11, wheels, Debian's pygpu, the
# project; its path is the last line (README, "GPU")
bundle: $(STAMP)
	$(PY) -m tools.bundle --out build

# DEVICE=cuda: the GPU is checked before anything else is made (preprocessing,
# downloads): one line saying what is missing
DEVICE_CHECK := $(if $(ON_GPU),device-check)
device-check: | $(STAMP)
	@$(PY) -m pipeline device >/dev/null

# the GPU tests on DEVICE (cuda unless a GPU device is given; DEVICE=opencl0:0 runs
# them on OpenCL, e.g. POCL on a CPU), with the pooling tests on the GPU kernels;
# without a usable device, one line saying why, exit 0
GPU_DEVICE  := $(or $(ON_GPU),cuda)
test-gpu: $(STAMP)
	@if reason=$$(DEVICE=$(GPU_DEVICE) $(PY) -m pipeline device 2>&1 >/dev/null); then \
	  DEVICE=$(GPU_DEVICE) SHARED=$(SHARED) $(PY) -m pytest -q tests/models/test_caffe_ops.py tests/models/test_layers.py && \
	  DEVICE=$(GPU_DEVICE) SHARED=$(SHARED) $(PY) -m pytest -q -m gpu tests/gpu; \
	else echo "test-gpu: skipped, no GPU usable: $${reason#error: }"; fi

# CUDA as far as it can be checked without a GPU: every kernel of the CUDA graphs
# compiled by NVRTC 13.0 (compute_90) and ptxas 13.0 (sm_90) through Debian's
# libgpuarray on a stand-in driver (tools/cuda_compile.py, docs/GPU.md); the pinned
# wheels go to build/cuda-compile/site, not .venv. Its table, then its tests.
.PHONY: test-cuda-compile
CUDA_COMPILE := build/cuda-compile
test-cuda-compile: $(STAMP)
	@if ! [ -d /usr/lib/python3/dist-packages/pygpu ] || ! [ -e /usr/lib/libgpuarray.so.3 ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing python3-pygpu libgpuarray3 libgpuarray-dev (Debian)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends python3-pygpu libgpuarray3 libgpuarray-dev; \
	  else echo "test-cuda-compile: needs Debian's python3-pygpu libgpuarray3 (apt-get, as root)"; \
	    exit 1; fi; \
	fi
	@if ! cmp -s requirements-cuda-compile.txt $(CUDA_COMPILE)/site/.requirements; then \
	  rm -rf $(CUDA_COMPILE)/site && \
	  $(PY) -m pip install -q --no-deps --target $(CUDA_COMPILE)/site \
	    -r requirements-cuda-compile.txt && \
	  cp requirements-cuda-compile.txt $(CUDA_COMPILE)/site/.requirements; \
	fi
	$(PY) -m tools.cuda_compile --json $(CUDA_COMPILE)/report.json
	DRT_CUDA_COMPILE=1 DRT_CUDA_COMPILE_REPORT=$(CUDA_COMPILE)/report.json \
	  $(PY) -m pytest -q -m cuda_compile tests/tools/test_cuda_compile.py
