# The two commands a new user needs: `make demo` and `make test`. Each creates the
# virtual environment it needs; nothing is installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: demo test test-starved lint tools bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

demo: $(STAMP)
	$(BIN)/meshtop demo

# What the tests run for real beside Python: a Prometheus server for the integration
# tests and Graphviz's dot to read the DOT export. Debian's packages where we may install
# them (root, as on CI); otherwise those tests say why they skip (and fail under CI=true).
TOOLS := prometheus:prometheus dot:graphviz victoria-metrics:victoria-metrics

tools:
	@for pair in $(TOOLS); do \
		cmd=$${pair%%:*}; pkg=$${pair##*:}; \
		if command -v $$cmd >/dev/null 2>&1; then \
			echo "$$cmd: $$(command -v $$cmd)"; \
		elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "$$cmd: installing Debian's $$pkg"; \
			{ [ -n "$$updated" ] || apt-get update -qq; } && updated=1 && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
				$$pkg >/dev/null || exit 1; \
		else \
			echo "$$cmd: not found and cannot install $$pkg here (needs root and apt-get);"; \
			echo "            the tests that need it will be skipped"; \
		fi; \
	done
	@# the real servers built or fetched into a cache outside the tree (tests/servers)
	@for script in tests/servers/*.sh; do \
		[ -e "$$script" ] || continue; bash "$$script" || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check meshtop tests benchmarks
	$(BIN)/ruff format --check meshtop tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(STAMP) tools lint
	$(BIN)/pytest

# The console's tests with Textual's idle wait taken away, as on a starved machine: they
# must wait for what the screen shows, never for the machine to look idle (tests/starved.py)
test-starved: $(STAMP)
	$(BIN)/pytest -p tests.starved tests/tui tests/kube

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_snapshot.py
	$(BIN)/python benchmarks/bench_prometheus_join.py
	$(BIN)/python benchmarks/bench_prometheus_eval.py
	$(BIN)/python benchmarks/bench_layout.py
	$(BIN)/python benchmarks/bench_terminal_bytes.py
	$(BIN)/python benchmarks/bench_detail.py
	$(BIN)/python benchmarks/bench_histories.py
	$(BIN)/python benchmarks/bench_export.py
	$(BIN)/python benchmarks/bench_waterfall.py
	$(BIN)/python benchmarks/bench_clusters.py
	$(BIN)/python benchmarks/bench_backend.py
	$(BIN)/python benchmarks/bench_console.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
