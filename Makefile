# One command each: `make demo` sets up and runs the challenge demo, `make test` sets up and tests.
PYTHON ?= python3

.PHONY: setup weights demo test bench

setup:
	$(PYTHON) -m pip install -q -e ".[speaker,ray,test]"

weights: setup
	$(PYTHON) download_weights.py

demo: weights
	$(PYTHON) run_local_test.py

test: setup
	$(PYTHON) download_weights.py whisper-tiny.en resemblyzer
	$(PYTHON) -m pytest -q

bench: weights
	$(PYTHON) bench/embed_throughput.py
	$(PYTHON) bench/alc.py
