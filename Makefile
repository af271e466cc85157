# The two commands of the README work on a fresh machine:
#   make demo   -> runs `llava-ov2 tokenize` on the embedded default clip
#   make test   -> runs the default (CI) test suite
# TORCH_SPEC lets other machines pick another torch build (e.g. TORCH_SPEC="torch==2.13.0+cu128").
PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS     ?= test,dev,lmms-eval
SLOW_EXTRAS ?= ray
LMMS_EVAL  ?= lmms-eval==0.7.3
PY          = $(VENV)/bin/python
STAMP       = $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
comma      := ,

.PHONY: install test test-slow demo bench bench-run lint clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	# lmms-eval's declared requirements (torchvision, av<16) break this CPU stack: its real imports are the
	# `lmms-eval` extra above, the package itself goes in without dependencies (docs/evaluation.md)
	$(PY) -m pip install -q --no-deps "$(LMMS_EVAL)"
	touch $@

install: $(STAMP)

test: install
	$(PY) -m pytest -q -m "not slow" --timeout=600

test-slow: install
	$(PY) -m pip install -q -e ".[$(EXTRAS),$(SLOW_EXTRAS)]"
	$(PY) -m pytest -q -m "slow" --timeout=1800

demo: install
	$(VENV)/bin/llava-ov2 tokenize --out demo_out

# Every perf script once (perf/README.md has the figures); ~10 min on 2 cores. bench-run skips the install
# step (e.g. `make bench-run PY=/path/to/python`).
bench: install
	$(MAKE) bench-run PY=$(PY)

bench-run:
	$(PY) perf/bench_vision_attention.py --repeats 3
	$(PY) perf/bench_codec_frontend.py
	$(PY) perf/bench_processor.py --reps 3
	$(PY) perf/bench_uniform_sampling.py --repeats 2
	$(PY) perf/bench_coverage.py --quick --methods official default
	$(PY) perf/bench_gpu.py

lint: install
	$(VENV)/bin/ruff check src tests perf conversion
	$(VENV)/bin/ruff format --check src tests perf conversion

clean:
	rm -rf $(VENV) build dist src/*.egg-info demo_out
