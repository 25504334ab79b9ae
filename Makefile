# Every target a user or CI needs; `make help` lists them. Set-up is a dependency of each, so
# `make run` and `make test` work from a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
# Set here so no target depends on the user's shell: Keras 3 breaks TFX Keras models.
export TF_USE_LEGACY_KERAS := 1
UV_VERSION := 0.13.9

# python3.10 on PATH if it really is 3.10 (a pyenv shim may point elsewhere), else pyenv's own, also when
# pyenv itself is not on PATH (as in a non-interactive CI shell).
PYTHON310 = $(shell for candidate in python3.10 $$(pyenv root 2>/dev/null)/versions/3.10*/bin/python3.10 \
	  $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.10*/bin/python3.10; do \
	  if command -v $$candidate >/dev/null 2>&1 && $$candidate -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; \
	  then command -v $$candidate; break; fi; done)
# The stamp changes whenever the lock, the package definition or the way they are installed does, so
# re-running set-up is a no-op otherwise.
INSTALL_RECIPE := uv-compile-bytecode
INSTALL_STAMP := $(VENV)/.installed-$(shell { cat requirements.lock setup.py; echo $(INSTALL_RECIPE); } | sha256sum | cut -c1-16)

# Optional settings: make run DATA=path/to/spans OUT=path/to/outputs VERBOSE=1
DATA ?=
OUT ?=
VERBOSE ?=
RUN_FLAGS = $(if $(DATA),--data-root $(DATA)) $(if $(OUT),--output-dir $(OUT)) $(if $(VERBOSE),--verbose)
OUTPUT_DIR = $(if $(OUT),$(OUT),$(if $(TAXI_OUTPUT_DIR),$(TAXI_OUTPUT_DIR),outputs))

.PHONY: help setup data run tune trials drift report score tfx-run serve serve-status serve-stop serve-shadow serve-canary serve-promote serve-switch serve-rollback serve-manifests monitor feedback monitor-loop replay kfp-compile kfp-golden image image-offline image-prune kind-up kfp-deploy kfp-run kind-down bench bench-scale bench-beam-modes bench-serve bench-score bench-monitor test test-fast test-e2e test-kfp kfp-local-env lint format lock clean

help: ## List the targets, by group
	@awk '/^##@ / {printf "\n%s\n", substr($$0, 5)} /^[a-z0-9-]+:.*## / {split($$0, parts, ":.*## "); printf "  make %-17s %s\n", parts[1], parts[2]}' $(MAKEFILE_LIST)

##@ Run

setup: $(INSTALL_STAMP) ## Create .venv (Python 3.10, the pinned lock) and install the Debian packages the tests need, as root or with sudo, else print the command
	@$(BIN)/python -m tools.system_packages install

$(INSTALL_STAMP): requirements.lock setup.py
	@test -n "$(PYTHON310)" || { echo "Python 3.10 was not found: install it (for example 'pyenv install 3.10.13', or your distribution's python3.10 and python3.10-venv packages) and run make again." >&2; exit 1; }
	@test -x $(BIN)/python && $(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' || { rm -rf $(VENV) && $(PYTHON310) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@# --compile-bytecode: uv writes no .pyc by default, and where PYTHONDONTWRITEBYTECODE is set (as on
	@# these machines) Python never does, so every process recompiled TensorFlow, TFX and Beam from source:
	@# 35 of a fully cached run's 57 s (docs/performance.md).
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*; touch $@

data: setup ## Write the Chicago Taxi sample from the tfx wheel as half-year spans
	$(BIN)/taxi-pipeline prepare-data $(if $(OUT),--output-dir $(OUT))

run: setup ## Prepare data and run the whole pipeline on Beam's DirectRunner (DATA=, OUT=, SERVING_LOGS=, VERBOSE=1)
	$(BIN)/taxi-pipeline run $(RUN_FLAGS) $(if $(SERVING_LOGS),--serving-logs $(SERVING_LOGS))

tune: setup ## `make run` with tuning first: the Trainer trains the best of a KerasTuner search (DATA=, OUT=, VERBOSE=1)
	$(BIN)/taxi-pipeline run --tune $(RUN_FLAGS) $(if $(SERVING_LOGS),--serving-logs $(SERVING_LOGS))

tfx-run: setup ## Register and run the pipeline with the tfx CLI, as `make run` does (DATA=, OUT=, SERVING_LOGS=, VERBOSE=1)
	$(BIN)/python -m pipeline.tfx_cli $(RUN_FLAGS) $(if $(SERVING_LOGS),--serving-logs $(SERVING_LOGS))

clean: ## Remove pipeline outputs (keeps .venv)
	rm -rf $(OUTPUT_DIR)

##@ Inspect a run

report: setup ## Print the latest run's slice table and HTML report path (RUN=<run id>, OPEN=1, ALL=1)
	$(BIN)/taxi-pipeline report $(if $(OUT),--output-dir $(OUT)) $(if $(RUN),--run-id $(RUN)) $(if $(OPEN),--open) $(if $(ALL),--all)

trials: setup ## Print the latest tuning run's trials: hyperparameters, held-out AUC, the best marked
	$(BIN)/taxi-pipeline trials $(if $(OUT),--output-dir $(OUT))

drift: setup ## Print every feature's span-to-span drift and serving skew; write outputs/drift_report.html
	$(BIN)/taxi-pipeline drift $(if $(OUT),--output-dir $(OUT)) $(if $(DATA),--data-root $(DATA)) $(if $(SERVING_LOGS),--serving-logs $(SERVING_LOGS))

score: setup ## Score every trip of span SPAN with the production model (FORMAT=csv|parquet; outputs/scores/)
	@test -n "$(SPAN)" || { echo "make score: SPAN= names the span to score, e.g. make score SPAN=20162" >&2; exit 2; }
	$(BIN)/taxi-pipeline score --span $(SPAN) $(if $(OUT),--output-dir $(OUT)) $(if $(DATA),--data-root $(DATA)) $(if $(FORMAT),--format $(FORMAT))

##@ Serve (docs/serving.md)

SERVE = $(BIN)/taxi-pipeline serve $(if $(OUT),--output-dir $(OUT))

serve: setup ## Start nginx, the model servers, the supervisor and Prometheus on 127.0.0.1 on the production model (VERSION=, SERVE_PORT=, CONTROL_PORT=)
	$(SERVE) start $(if $(VERSION),--version $(VERSION)) $(if $(SERVE_PORT),--port $(SERVE_PORT)) $(if $(PROMETHEUS_PORT),--prometheus-port $(PROMETHEUS_PORT)) $(if $(CONTROL_PORT),--control-port $(CONTROL_PORT))

serve-status: setup ## What is live (versions, mode, canary share) and whether each process is ready
	$(SERVE) status

serve-stop: setup ## Stop every process of the serving stack
	$(SERVE) stop

serve-shadow: setup ## Copy every request to VERSION=V (stable still answers)
	$(SERVE) shadow $(VERSION)

serve-canary: setup ## Send PERCENT= (default 5) of requests to VERSION=V; AUTO=1 lets the analysis ramp, promote or roll back
	$(SERVE) canary $(VERSION) --percent $(or $(PERCENT),5) $(if $(AUTO),--auto)

serve-promote: setup ## The canary or shadow becomes stable
	$(SERVE) promote

serve-switch: setup ## Blue-green: all traffic to VERSION=V at once
	$(SERVE) switch $(VERSION)

serve-manifests: setup ## KServe/Istio manifests of a pattern for a cluster: STABLE=V [CANDIDATE=V2 PERCENT= or SHADOW=1]
	$(SERVE) manifests --stable $(STABLE) $(if $(CANDIDATE),--candidate $(CANDIDATE)) $(if $(PERCENT),--canary-percent $(PERCENT)) $(if $(SHADOW),--shadow)

serve-rollback: setup ## All traffic back to stable now; the other version is recorded as rolled back (REASON=)
	$(SERVE) rollback $(if $(REASON),--reason "$(REASON)")

##@ Monitor and close the loop (docs/monitoring.md)

MONITOR = $(BIN)/taxi-pipeline monitor $(if $(OUT),--output-dir $(OUT))

monitor: setup ## Write the monitor page (outputs/monitor.html, and each replay's) and print a summary (MINUTES=)
	$(MONITOR) report $(if $(MINUTES),--minutes $(MINUTES))

feedback: setup ## Labels that arrived later, from a CSV: FILE= with request_id, tips (and trip, fare)
	$(MONITOR) feedback $(FILE)

monitor-loop: setup ## One step of the loop: export labelled trips into DATA= and retrain when the policy says so
	$(MONITOR) $(if $(DATA),--data-root $(DATA)) loop

replay: setup ## The loop on real data: 2016 H2 replayed as traffic, tips as feedback, retrain, canary (SCENARIO=clean|concept, RATE=)
	$(MONITOR) replay --scenario $(or $(SCENARIO),clean) $(if $(RATE),--rate $(RATE))

##@ Kubeflow Pipelines (kubeflow/README.md)

KFP_VERSION := 2.2.0
KIND_CLUSTER := taxi-kfp
KFP_SHARED ?= $(OUTPUT_DIR)/kfp_shared
OFFLINE_BASE := taxi-pipeline-base:python3.10.13-bookworm
KFP_IMAGE = $(shell $(BIN)/python -m kubeflow.compiler --image-tag 2>/dev/null)
# Each cluster target checks its tools first and says which is missing.
require = @for tool in $(1); do command -v $$tool >/dev/null 2>&1 || { echo "make $@: '$$tool' is not installed; see kubeflow/README.md" >&2; exit 1; }; done

kfp-compile: setup ## Compile the pipeline for Kubeflow Pipelines 2.x into kubeflow/build/ (offline; TUNE=1: with the Tuner)
	$(BIN)/python -m kubeflow.compiler $(if $(TUNE),--tune)

kfp-golden: setup ## Rewrite the compiled pipeline's golden structure after a deliberate change
	$(BIN)/python -m kubeflow.compiler --tune --write-golden

image: setup ## Build the pipeline image with Docker from the public python:3.10 base
	$(call require,docker)
	docker build -f kubeflow/Dockerfile -t $(KFP_IMAGE) .

image-offline: setup ## Build the same image without any registry (debootstrap base; needs root, dockerd)
	$(call require,docker debootstrap)
	kubeflow/offline_base.sh $(PYTHON310) $(OFFLINE_BASE)
	docker build --network host -f kubeflow/Dockerfile --build-arg BASE_IMAGE=$(OFFLINE_BASE) -t $(KFP_IMAGE) .

image-prune: setup ## Remove the pipeline's images other than the current tag (each code change tags a new 3.7 GB one)
	$(call require,docker)
	$(BIN)/python -m kubeflow.image_prune

kind-up: ## Create the kind cluster, with KFP_SHARED mounted into its node
	$(call require,docker kind kubectl)
	mkdir -p $(KFP_SHARED) build
	sed "s|@SHARED_DIR@|$(abspath $(KFP_SHARED))|" kubeflow/kind-config.yaml > build/kind-config.yaml
	kind create cluster --name $(KIND_CLUSTER) --config build/kind-config.yaml

kfp-deploy: kfp-compile ## Install KFP standalone (KFP_VERSION), the shared volume, the data and the image
	$(call require,docker kind kubectl)
	kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=$(KFP_VERSION)"
	kubectl wait --for condition=established --timeout=120s crd/applications.app.k8s.io
	kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=$(KFP_VERSION)"
	kubectl -n kubeflow wait --for=condition=available --timeout=1800s deployment --all
	kubectl apply -f kubeflow/shared-volume.yaml
	$(BIN)/taxi-pipeline prepare-data --output-dir $(KFP_SHARED)
	kind load docker-image $(KFP_IMAGE) --name $(KIND_CLUSTER)

kfp-run: kfp-compile ## Upload the compiled pipeline, run it on the cluster and follow it to the end
	$(call require,kubectl)
	@kubectl -n kubeflow get service ml-pipeline-ui >/dev/null 2>&1 || { echo "make $@: no Kubeflow Pipelines found by kubectl; run 'make kind-up kfp-deploy' first" >&2; exit 1; }
	kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80 >/dev/null 2>&1 & forward=$$!; \
	  sleep 5; $(BIN)/python -m kubeflow.submit --host http://localhost:8080; status=$$?; kill $$forward; exit $$status

kind-down: ## Delete the kind cluster (KFP_SHARED and its models stay)
	$(call require,kind)
	kind delete cluster --name $(KIND_CLUSTER)

##@ Benchmarks (docs/performance.md)

bench: setup ## Ours cold/second/cached vs TFX's official taxi example vs a one-process floor (REPETITIONS=3, ROWS=, VARIANTS=cold,second,cached,floor)
	$(BIN)/python -m benchmarks.bench --repetitions $(or $(REPETITIONS),3) $(if $(ROWS),--rows $(ROWS)) $(if $(VARIANTS),--variants $(VARIANTS)) --work-dir $(abspath build/bench)

bench-scale: setup ## The whole pipeline cold at 15k/100k/300k/1M generated rows (SIZES= to choose)
	$(BIN)/python -m benchmarks.scale $(if $(SIZES),--sizes $(SIZES)) --work-dir $(abspath build/bench-scale)

bench-serve: setup ## The serving stack's p50/p99 at RATE= (200) requests/s, through nginx and direct, vs the in-process floor, its ceiling; BASELINE=checkout for before/after (needs `make run`)
	$(BIN)/python -m benchmarks.serve --output-dir $(OUTPUT_DIR) --work-dir $(abspath build/bench-serve) --rate $(or $(RATE),200) --seconds $(or $(SECONDS),20) $(if $(BASELINE),--baseline-source $(abspath $(BASELINE)))

bench-score: setup ## Batch scoring's trips/s on ROWS= (1000000) generated trips vs the serving stack's batched throughput (needs `make run`)
	$(BIN)/python -m benchmarks.batch_scoring --output-dir $(OUTPUT_DIR) --work-dir $(abspath build/bench-score) --rows $(or $(ROWS),1000000)

bench-monitor: setup ## The monitor's refresh after 10,000 new trips and labels on 1M of each (REQUESTS=, NEW=; docs/monitoring.md)
	$(BIN)/python -m benchmarks.monitor --work-dir $(abspath build/bench-monitor) $(if $(REQUESTS),--requests $(REQUESTS)) $(if $(NEW),--new $(NEW))

bench-beam-modes: setup ## Time a cold run under each Beam DirectRunner mode (REPETITIONS=1, ROWS=, MODES=)
	$(BIN)/python -m benchmarks.beam_modes --repetitions $(or $(REPETITIONS),1) $(if $(ROWS),--rows $(ROWS)) $(if $(MODES),--modes $(MODES))

##@ Tests and code health

# Test files run on TEST_WORKERS processes (pytest-xdist), a whole file per worker so that a module's
# fixture (a trained model, a running stack) is built once. The end-to-end tests spend much of their time
# in subprocesses, sleeps and waits on servers, so two workers on two cores took them from 54 to 32
# minutes (docs/performance.md, "Tests on two workers"). TEST_WORKERS=0 runs them in one process.
TEST_WORKERS ?= 2
PYTEST_PARALLEL = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

# Tests that need a program of tools/system_packages.py fail where it is missing, and so does `make test`
# before running any; SKIP_SYSTEM_TESTS=1 skips them instead, and the last lines name what was skipped.
SYSTEM_PACKAGES_CHECK = $(BIN)/python -m tools.system_packages check
SYSTEM_PACKAGES_SKIPPED = @$(BIN)/python -m tools.system_packages skipped

test: setup ## Lint, then the fast tests, then the end-to-end tests (what CI runs; SKIP_SYSTEM_TESTS=1)
	$(SYSTEM_PACKAGES_CHECK)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "not e2e and not kfp" --durations=10
	$(BIN)/pytest $(PYTEST_PARALLEL) -m e2e --durations=25
	$(SYSTEM_PACKAGES_SKIPPED)

test-fast: setup ## Unit and input-validation tests only (skips e2e; SKIP_SYSTEM_TESTS=1)
	$(SYSTEM_PACKAGES_CHECK)
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "not e2e and not kfp" --durations=10
	$(SYSTEM_PACKAGES_SKIPPED)

test-e2e: setup ## Only the end-to-end pipeline tests (SKIP_SYSTEM_TESTS=1)
	$(SYSTEM_PACKAGES_CHECK)
	$(BIN)/pytest $(PYTEST_PARALLEL) -m e2e --durations=25
	$(SYSTEM_PACKAGES_SKIPPED)

test-kfp: setup kfp-local-env ## The compiled Kubeflow pipeline in containers of the image, by kfp.local too
	$(MAKE) image-offline
	$(BIN)/pytest $(PYTEST_PARALLEL) -m kfp

KFP_LOCAL_VENV := build/kfp-local-venv
kfp-local-env: $(KFP_LOCAL_VENV)/.installed ## The separate environment for KFP's local runner (kfp 2.7)
$(KFP_LOCAL_VENV)/.installed: kubeflow/kfp-local-requirements.txt
	@command -v python3 >/dev/null || { echo "make $@: python3 is needed for the kfp.local environment" >&2; exit 1; }
	rm -rf $(KFP_LOCAL_VENV) && python3 -m venv $(KFP_LOCAL_VENV)
	$(KFP_LOCAL_VENV)/bin/python -m pip install --quiet -r kubeflow/kfp-local-requirements.txt
	touch $@

lint: setup ## ruff check and format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

lock: ## Re-resolve requirements.lock in a scratch venv (needs network to PyPI)
	@test -n "$(PYTHON310)" || { echo "Python 3.10 was not found." >&2; exit 1; }
	$(PYTHON310) -m tools.lock --uv-version $(UV_VERSION)
