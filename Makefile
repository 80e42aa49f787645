# make demo : set up .venv (first run only) and run the main job (distil and print a table)
# make test : set up .venv (first run only) and run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: venv demo test clean-venv

venv:
	bash tools/setup_env.sh

demo: venv
	$(PY) demo/distill_demo.py

test: venv
	$(PY) -m pytest tests -q

clean-venv:
	rm -rf $(VENV)
