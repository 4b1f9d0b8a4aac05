# storefuse: two commands do everything on a fresh machine.
#   make demo   set up (idempotent) and run the whole stack live on a simulated store
#   make test   set up (idempotent) and run the full test suite
SHELL := /bin/bash
.DEFAULT_GOAL := help
ENV := . scripts/env.sh &&

.PHONY: help setup demo test unit system lint bags bench eval clean

help:
	@echo "make demo   - set up and run the full stack on the simulated minimart"
	@echo "make test   - set up and run every test (unit, system, lint)"
	@echo "make bags   - regenerate the committed bags under bags/ from a live run"
	@echo "make eval   - offline evaluation of the standard scenarios"
	@echo "make lint   - ruff"
	@echo "make bench-tracker - shopper tracker vs norfair and motpy (out/bench/tracker_peers.json)"

setup:
	@bash scripts/setup.sh

demo: setup
	@$(ENV) storefuse demo

test: setup
	@$(ENV) bash scripts/run_tests.sh

unit: setup
	@$(ENV) python -m pytest -q packages

system: setup
	@$(ENV) python -m pytest -q tests

lint: setup
	@$(ENV) ruff check packages tests scripts $(wildcard bench)

bags: setup
	@$(ENV) bash scripts/make_bags.sh

eval: setup
	@$(ENV) storefuse eval --scenario scenarios/minimart_two_shoppers.yaml --seeds 5

.PHONY: bench-tracker
bench-tracker: setup    ## shopper tracker vs norfair and motpy (own venv out/bench/venv-peers); docs/benchmarks.md
	@$(ENV) python bench/tracker_peers.py --profile

clean:
	rm -rf ros2_ws/build ros2_ws/install ros2_ws/log out .pytest_cache
