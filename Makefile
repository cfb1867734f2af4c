# The README's two commands:  `make table1`  (quick Table 1)  and  `make test`.
# Both create .venv and install what they need on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PRESET ?= quick
OUT ?= runs/table1-$(PRESET)
EXTRAS ?= test

.PHONY: venv data table1 test speed clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

venv: $(VENV)/.installed

# Root runs apt-get directly, others through passwordless sudo (never prompts).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)

# Stage MNIST (checksummed), Fashion-MNIST (Debian package dataset-fashion-mnist where
# apt is available, else the torchvision download) and CIFAR-10 (original if
# obtainable, else the JPEG copy). Only MNIST is fatal: a dataset that cannot be
# staged makes its Table 1 cells say "data not staged".
data: venv
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then \
	  $(SUDO) apt-get install -y dataset-fashion-mnist \
	    || { $(SUDO) apt-get update && $(SUDO) apt-get install -y dataset-fashion-mnist; } \
	    || echo "note: could not install dataset-fashion-mnist; fetch fmnist falls back to the download"; \
	fi
	$(PY) -m avalanche_sparse.benchmarks.data fetch mnist
	-$(PY) -m avalanche_sparse.benchmarks.data fetch fmnist
	-$(PY) -m avalanche_sparse.benchmarks.data fetch cifar10-jpeg

table1: data
	$(PY) reproduce/table1.py --preset $(PRESET) --out $(OUT)

test: venv
	$(PY) -m pytest -q tests

speed: data
	$(PY) reproduce/speed.py

clean:
	rm -rf runs .pytest_cache
