# rogeriq: `make run` serves on 127.0.0.1:8080 with data in ./data; `make test` runs every test,
# a small schemathesis pass included, then the conformance suite (tests/api) again on
# PostgreSQL when it is installed; `make fuzz` runs schemathesis at full size.
CARGO ?= cargo

.PHONY: run build test bench soak docs-check fuzz lint clean screenshots

run:
	$(CARGO) run --release -- serve

# The binary ships without its debug line tables, which are most of its size: they go to
# rogeriq.debug beside it, where a panic's backtrace finds them (.gnu_debuglink) for file and
# line; without that file a backtrace still names every function. Each cargo build puts the
# full binary back, so the split is made afresh every time.
build:
	$(CARGO) build --release
	cd "$${CARGO_TARGET_DIR:-target}/release" && \
	  objcopy --only-keep-debug rogeriq rogeriq.debug && \
	  objcopy --strip-debug --add-gnu-debuglink=rogeriq.debug rogeriq rogeriq.lean && \
	  mv rogeriq.lean rogeriq
	@echo "built $${CARGO_TARGET_DIR:-target}/release/rogeriq (its debug info: rogeriq.debug beside it)"

test:
	$(CARGO) test --all-targets
	@# tests/api against PostgreSQL 15+ (a throwaway cluster: tests/api/pg_cluster.rs). Without
	@# it the suite is skipped in one line; TEST_POSTGRES_REQUIRED=1 (.ci/run) makes that a failure.
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then \
		echo "PostgreSQL suite: the browser journeys, the MCP tests and the filters' small-budget random walk run on redb only: the first two drive the same HTTP handlers and touch no store code of their own, the walk's page logic is the store's neutral code (the default-budget walk runs on both)"; \
		TEST_STORE_BACKEND=postgres $(CARGO) test --test api -- --test-threads 4 --skip dashboard::browser_journeys --skip mcp:: --skip filters::every_filter_equals_a_brute_force_filter_over_random_walks; \
	elif [ -n "$$TEST_POSTGRES_REQUIRED" ]; then \
		echo "PostgreSQL suite: PostgreSQL is not installed (apt-get install postgresql)"; exit 1; \
	else \
		echo "PostgreSQL suite skipped: PostgreSQL is not installed (apt-get install postgresql)"; \
	fi
	$(MAKE) docs-check

docs-check:
	@# tests/docs_check.py runs the shell blocks of README.md and docs/ against fresh servers.
	$(CARGO) build --bin rogeriq
	python3 tests/docs_check.py

bench:
	@# benches/requests.rs loads the server with wrk (Debian package); install it when missing.
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(CARGO) bench

soak:
	@# benches/soak.rs: a mixed load for SOAK_MINUTES (30) against a release server, then its checks.
	$(CARGO) bench --bench soak

fuzz:
	@# benches/fuzz.rs installs schemathesis into target/fuzz-venv when missing.
	FUZZ_SIZE=full $(CARGO) bench --bench fuzz

screenshots:
	@# The dashboard's browser journeys, saving their screenshots over docs/screenshots/.
	TEST_SCREENSHOTS=$(CURDIR)/docs/screenshots $(CARGO) test --test api dashboard::browser_journeys

lint:
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
