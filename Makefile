# Every target that runs code first makes sure .venv matches pyproject.toml.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint bench gpu-wheels scalesim-venv bitfusion-venv mmdet-venv clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# The main job: a Pareto sweep on the embedded default model; writes runs/demo/ and the README plot.
demo: $(STAMP)
	$(BIN)/mixaq demo --out runs/demo --readme-image docs/img/pareto_demo.png

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Everything a bare GPU machine (python3 + torch, timm, OpenCV, pandas; no network) needs for the GPU
# check: the mixaq wheel, its other dependencies' wheels for CPython 3.10-3.13, gpu_check.py
# (docs/gpu_check.md says how to install and run it there).
GPU_WHEELS ?= dist/gpu-wheels
gpu-wheels: $(STAMP)
	$(BIN)/python -m benchmarks.bench_gpu_wheels --build $(GPU_WHEELS)

# SCALE-Sim 3.0.0 needs numpy<2.4 and writes report files; it lives in its own venv.
SCALESIM_VENV := .venv-scalesim
scalesim-venv: $(SCALESIM_VENV)/.installed
$(SCALESIM_VENV)/.installed:
	@test -x $(SCALESIM_VENV)/bin/python || $(PY) -m venv $(SCALESIM_VENV)
	$(SCALESIM_VENV)/bin/python -m pip install -q 'scalesim==3.0.0' 'numpy<2.4'
	@touch $@

# Bit Fusion's own simulator (hsharma35/bitfusion + hsharma35/dnnweaver2, ported to Python 3 in a local
# checkout named by MIXAQ_BITFUSION_SRC; none of its code is in this repository) runs in its own venv.
# Only registry packages are installed here: the checkout is put on sys.path at run time.
BITFUSION_VENV := .venv-bitfusion
bitfusion-venv: $(BITFUSION_VENV)/.installed
$(BITFUSION_VENV)/.installed:
	@test -x $(BITFUSION_VENV)/bin/python || $(PY) -m venv $(BITFUSION_VENV)
	$(BITFUSION_VENV)/bin/python -m pip install -q 'pandas>=2,<3' 'numpy<2.4' 'graphviz==0.20.3'
	@touch $@

# mmdetection 3.3.0, the oracle the detection tests compare against (tests/test_detection_oracle.py).
# It lives in its own venv; torch, torchvision and timm are the project venv's own (a .pth line adds
# that site directory after the venv's), so both sides run the same kernels and nothing large is
# downloaded twice. mmcv's compiled ops are replaced at run time by tests/_mmdet_oracle.py.
MMDET_VENV := .venv-mmdet
mmdet-venv: $(MMDET_VENV)/.installed
# No prerequisite on the project venv's stamp: the tests call this target, and it must never
# reinstall a venv; it only needs one to exist (`make test` builds it first).
$(MMDET_VENV)/.installed:
	@test -x $(BIN)/python || { echo "mmdet-venv: build the project venv first (make test)" >&2; exit 1; }
	@test -x $(MMDET_VENV)/bin/python || $(PY) -m venv $(MMDET_VENV)
	$(BIN)/python -c "import os, torch; print('import site; site.addsitedir(%r)' % os.path.dirname(os.path.dirname(torch.__file__)))" \
		> $(MMDET_VENV)/lib/python3.11/site-packages/_project_torch.pth
	$(MMDET_VENV)/bin/python -m pip install -q 'mmdet==3.3.0' 'mmcv-lite==2.1.0' 'mmengine==0.10.7' 'numpy<2.4'
	@touch $@

clean-venv:
	rm -rf $(VENV) $(SCALESIM_VENV) $(BITFUSION_VENV) $(MMDET_VENV)
