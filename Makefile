# The two commands a new user needs: `make demo` and `make test`. Each creates the
# virtual environment it needs; nothing is installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint prometheus bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

demo: $(STAMP)
	$(BIN)/meshtop demo

# A real Prometheus for the integration tests: Debian's package where we may install it
# (root, as on CI); otherwise those tests say why they skip (and fail under CI=true).
prometheus:
	@if command -v prometheus >/dev/null 2>&1; then \
		echo "prometheus: $$(command -v prometheus)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "prometheus: installing Debian's package"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	else \
		echo "prometheus: not found and cannot install it here (needs root and apt-get);"; \
		echo "            the integration tests will be skipped"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check meshtop tests benchmarks
	$(BIN)/ruff format --check meshtop tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(STAMP) prometheus lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_snapshot.py
	$(BIN)/python benchmarks/bench_prometheus_join.py
	$(BIN)/python benchmarks/bench_layout.py
	$(BIN)/python benchmarks/bench_terminal_bytes.py
	$(BIN)/python benchmarks/bench_detail.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
