# specdeploy — developer entry points. `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CLUSTER_DIR := .cluster
PYTEST := $(PY) -m pytest
# The cluster tiers mostly wait on the API server and the operator, not the CPU: `make test` spreads their files over
# pytest-xdist workers, each with its own control plane on its own loopback ports and pod IPs (tests/conftest.py,
# tests/harness/localcluster.py). Tests marked `serial` (they assert on wall time or memory) run after, alone.
# Whole files go to one worker (module fixtures stay shared), in the order given: xdist's default reorder (most tests
# first) would start the one-test, minutes-long files last, so tests/reliability comes first below. TEST_WORKERS=0 runs
# everything in one process.
TEST_WORKERS ?= 3
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)
# $(call cluster_tiers,PATHS): the parallel run, then the serial tests alone (a tier without any is no failure: 5).
define cluster_tiers
$(PYTEST) $(1) -q $(XDIST) -m 'not serial'
$(PYTEST) $(1) -q -m serial || [ $$? -eq 5 ]
endef

.PHONY: install lint types unit integration chart-check e2e images images-test test demo cluster-up cluster-down controlplane prometheus lws bench crd clean

## install: create .venv with the package and every test dependency (idempotent; a no-op when up to date)
install: $(STAMP)
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[validator,compare,test,dev]'
	touch $(STAMP)

## controlplane: build (once) the pinned Kubernetes control plane from Go modules into the cache
controlplane:
	@bash hack/build-controlplane.sh

## prometheus: build (once) the pinned Prometheus server from its Go module into the cache (integration and chart tiers)
prometheus:
	@bash hack/build-prometheus.sh >/dev/null

## lws: build (once) the pinned LeaderWorkerSet controller from its Go module into the cache (integration tier)
lws:
	@bash hack/build-lws.sh >/dev/null

lint: install
	$(VENV)/bin/ruff check operator tests bench
	$(VENV)/bin/ruff format --check operator tests bench

types: install
	$(VENV)/bin/mypy

unit: install
	$(PYTEST) tests/unit -q

integration: install controlplane prometheus
	$(call cluster_tiers,tests/integration)

chart-check: install controlplane prometheus
	$(call cluster_tiers,tests/chart)

## e2e: the operator driving real vLLM (CPU build, installed and cached on first use) serving tiny generated models
e2e: install controlplane
	$(PYTEST) tests/e2e -q

## images: build images/operator and images/validator without a Docker engine (buildah + mmdebstrap, Debian's
## packages: apt-get install -y buildah mmdebstrap podman runc); bases and images cached under ~/.cache/specdeploy/images
images:
	@bash hack/images/build.sh

## images-test: build, then run both images (podman) against the local control plane and the tokenizer fixtures
images-test: install controlplane
	$(call cluster_tiers,tests/images)

# tests/images when the daemonless builder is installed (.ci/run installs it); it shares the integration session's
# control plane. Evaluated when `test` runs.
IMAGES_TIER = $(shell bash -c 'source hack/images/common.sh && need_tools buildah mmdebstrap podman runc' \
	>/dev/null 2>&1 && echo tests/images)

## test: everything CI runs — lint, types, unit, then the tiers that need the local control plane (with the images
## tier when buildah, mmdebstrap, podman and runc are installed), then real vLLM
test: install lint types controlplane prometheus
	@if [ -z "$(IMAGES_TIER)" ]; then echo "images tier NOT RUN: apt-get install -y buildah mmdebstrap podman runc"; fi
	$(PYTEST) tests/unit -q
	$(call cluster_tiers,tests/reliability tests/integration tests/chart $(IMAGES_TIER))
	$(PYTEST) tests/e2e -q

cluster-up: install controlplane
	$(PY) -m tests.harness.localcluster up --dir $(CLUSTER_DIR)

cluster-down:
	@if [ -x $(PY) ]; then $(PY) -m tests.harness.localcluster down --dir $(CLUSTER_DIR); fi

## demo: the local control plane, the CRDs, the operator and an example; Ctrl-C stops everything it started.
## Real vLLM (CPU) when it and the tiny models are cached (`make e2e` caches them), scripted metrics pages otherwise;
## DEMO_VLLM=real|scripted|auto chooses.
DEMO_VLLM ?= auto
demo: install controlplane
	$(PY) hack/demo.py --vllm $(DEMO_VLLM)

bench: install controlplane
	$(PY) -m bench.run_all

crd: install
	$(VENV)/bin/specdeploy crd > crds/specdeploy.io_speculativedeployments.yaml
	cp crds/*.yaml charts/specdeploy/crds/

clean: cluster-down
	rm -rf $(VENV) $(CLUSTER_DIR) .mypy_cache .ruff_cache .pytest_cache
