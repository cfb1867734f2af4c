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

# Stage MNIST (checksummed) and CIFAR-10 (original if obtainable, else the JPEG copy).
data: venv
	$(PY) -m avalanche_sparse.benchmarks.data fetch mnist
	-$(PY) -m avalanche_sparse.benchmarks.data fetch cifar10-jpeg

table1: data
	$(PY) reproduce/table1.py --preset $(PRESET) --out $(OUT)

test: venv
	$(PY) -m pytest -q tests

speed: data
	$(PY) reproduce/speed.py

clean:
	rm -rf runs .pytest_cache
