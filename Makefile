# Two entry points for people: `make quickstart` and `make test` (see README.md).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
# In CI the lock file must already be right: a dependency drift fails instead of resolving anew.
CARGO_LOCK_FLAG := $(if $(filter true,$(CI)),--locked,)
SIM_MACHINES ?= 8
SIM_GPU_MACHINES ?= 4
SIM_LISTEN ?= 127.0.0.1:5240
BENCH_MACHINES ?= 300

.PHONY: test fmt-check clippy unit crds tools tools-check quickstart simulator bench bench-memory fuzz chaos help release image

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

test: fmt-check clippy deny doc tools tools-check unit ## Everything CI runs: formatting, lints, unit, integration and end-to-end tests
	@echo "make test: all checks passed"

# Test tiers below `make test`: `check` needs no Go tools and starts no control plane.
.PHONY: check check-tests end-to-end

check: fmt-check clippy check-tests ## Quick: formatting, lints, unit, simulator and controller tests (no Go tools)
	@echo "make check: all checks passed"

check-tests: ## Every test that needs neither the Go tools nor a control plane
	@echo "==> cargo test (no Go tools)"
	$(CARGO) test $(CARGO_LOCK_FLAG) --workspace --exclude capmaas-e2e --all-targets --all-features
	$(CARGO) test $(CARGO_LOCK_FLAG) -p capmaas-e2e --all-features --lib --bins
	$(CARGO) test $(CARGO_LOCK_FLAG) -p capmaas-e2e --all-features --test e2e -- sim_

end-to-end: tools ## Only the end-to-end test binary (E2E_ARGS=... for test filters and flags)
	$(CARGO) build $(CARGO_LOCK_FLAG) -p capmaas-controllers --bin capmaas-manager
	$(CARGO) test $(CARGO_LOCK_FLAG) -p capmaas-e2e --all-features --test e2e -- $(E2E_ARGS)

fmt-check: ## Fail when code is not formatted
	@echo "==> cargo fmt --check"
	$(CARGO) fmt --all -- --check

clippy: ## Lints with warnings denied
	@echo "==> cargo clippy"
	$(CARGO) clippy $(CARGO_LOCK_FLAG) --workspace --all-targets --all-features -- -D warnings

unit: ## Unit, integration and end-to-end tests of every crate (needs `make tools` for end-to-end)
	@echo "==> cargo test"
	$(CARGO) test $(CARGO_LOCK_FLAG) --workspace --all-targets --all-features

tools-check: ## The contract of the tools build script (no-op when cached, clear errors)
	bash e2e/tools/test-build.sh

crds: ## Regenerate config/crd/bases and api/FIELDS.md from the Rust types
	$(CARGO) run -p capmaas-api --features crdgen --bin crdgen
	$(CARGO) run -p capmaas-api --features crdgen --bin crdgen -- --fields-doc

tools: ## Build the Go binaries for end-to-end tests into the cache outside the clone
	bash e2e/tools/build.sh
	CAPMAAS_TOOLS_SET=capi-1.10 bash e2e/tools/build.sh
	CAPMAAS_TOOLS_SET=capi-1.9 bash e2e/tools/build.sh

quickstart: tools ## Run the whole stack here against the MAAS simulator until Ctrl-C
	$(CARGO) build -p capmaas-controllers --bin capmaas-manager
	$(CARGO) run -p capmaas-e2e --bin quickstart -- --machines $(SIM_MACHINES) --gpu-machines $(SIM_GPU_MACHINES)

simulator: ## Run only the MAAS simulator with generated machines (Ctrl-C stops it)
	$(CARGO) run --release -p maas-sim -- --listen $(SIM_LISTEN) --machines $(SIM_MACHINES) --gpu-machines $(SIM_GPU_MACHINES) --deploy-seconds 5

FUZZ_CASES ?= 20000

fuzz: ## Property tests with many more cases than `make test` runs (FUZZ_CASES=N)
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test $(CARGO_LOCK_FLAG) -p maas-client -p maas-sim -p capmaas-controllers --test properties

CHAOS_MACHINES ?= 50
CHAOS_KILLS ?= 100

chaos: tools ## The full chaos campaign, printing its audit (CHAOS_MACHINES, CHAOS_KILLS; CHAOS_SEED=N repeats a run)
	CHAOS_MACHINES=$(CHAOS_MACHINES) CHAOS_KILLS=$(CHAOS_KILLS) $(MAKE) end-to-end E2E_ARGS="chaos:: --nocapture"

bench-memory: tools ## The manager's memory and CPU with N MaasMachines in one namespace, release build (BENCH_MACHINES, default 300)
	$(CARGO) build --release $(CARGO_LOCK_FLAG) -p capmaas-controllers --bin capmaas-manager
	CAPMAAS_MANAGER_BIN=$(CURDIR)/target/release/capmaas-manager $(CARGO) run --release $(CARGO_LOCK_FLAG) -p capmaas-e2e --bin bench_memory -- --machines $(BENCH_MACHINES)

bench: ## Benchmarks that print numbers (not tests)
	$(CARGO) run --release -p maas-sim --example bench_read
	$(CARGO) run -p capmaas-controllers --example bench_observer -- 60

image: ## The manager image as an OCI layout in out/image/oci, built without a container engine and checked (needs umoci, musl-tools, the musl Rust target)
	bash hack/image.sh

release: ## clusterctl repository in out/release/infrastructure-maas/v<version> (IMAGE=... to override the manager image)
	bash hack/release.sh

# cargo-deny, pinned and installed from crates.io into the cache outside the clone, keyed by version.
CARGO_DENY_VERSION := 0.20.2
CARGO_DENY_ROOT ?= $(HOME)/.cache/capmaas/cargo-deny-$(CARGO_DENY_VERSION)
CARGO_DENY := $(CARGO_DENY_ROOT)/bin/cargo-deny

.PHONY: deny deny-tool doc

deny: deny-tool ## Licenses, duplicate versions and sources of the dependencies (deny.toml; advisories need GitHub)
	@echo "==> cargo deny"
	$(CARGO_DENY) $(CARGO_LOCK_FLAG) check licenses bans sources

deny-tool: $(CARGO_DENY) ## Install the pinned cargo-deny into the cache (no-op when there)

$(CARGO_DENY):
	$(CARGO) install --locked cargo-deny@$(CARGO_DENY_VERSION) --root $(CARGO_DENY_ROOT)

doc: ## API docs of every crate with rustdoc warnings denied
	@echo "==> cargo doc"
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc $(CARGO_LOCK_FLAG) --workspace --no-deps
