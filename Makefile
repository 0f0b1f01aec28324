# medledger: the two commands a new user needs are `make demo` and `make test`.
# Every target installs what it needs (npm packages, a Python venv, the package) idempotently:
# an install step runs again only when its inputs (package-lock.json, requirements.txt) change.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
# py-solc-x and brownie find "solc 0.8.37" here: a link to this clone's solc-js wrapper (tools/solc).
export SOLCX_BINARY_PATH := $(CURDIR)/node_modules/.solcx
# Each server the project starts binds to 127.0.0.1; nothing here dials out but the package registries.

.PHONY: setup postgres demo test lint lint-sol types test-types test-contracts test-forge test-python bench deploy artifacts clean portal-assets browser

# The portal's script, bundled by esbuild from its sources and the npm packages (ethers, libsodium).
PORTAL_JS := medledger/portal/static/app.js
PORTAL_SRC := $(wildcard medledger/portal/web/*.js medledger/portal/web/pages/*.js)

setup: $(VENV)/.installed node_modules/.installed $(PORTAL_JS)

node_modules/.installed: package.json package-lock.json tools/postinstall.js
	npm install --no-audit --no-fund
	node tools/postinstall.js
	touch $@

# The last step lets py-solc-x and brownie find "solc 0.8.37" without this Makefile too: every Python
# of this venv sets SOLCX_BINARY_PATH (unless already set) to this clone's link to its solc-js wrapper.
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	printf 'import os; os.environ.setdefault("SOLCX_BINARY_PATH", "%s")\n' "$(CURDIR)/node_modules/.solcx" \
		> "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/medledger-solcx.pth"
	touch $@

## PostgreSQL server binaries for the index tests and benchmark (Debian apt; installed only when
## missing, and only as root: otherwise say what to install). The tests start their own private
## server on 127.0.0.1 in a temporary directory; the packaged cluster is never started.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else \
		echo "PostgreSQL is missing: install it (Debian: sudo apt-get install -y postgresql)" >&2; exit 1; \
	fi

$(PORTAL_JS): node_modules/.installed $(PORTAL_SRC)
	esbuild medledger/portal/web/main.js --bundle --format=esm --minify --target=chrome110,firefox110,safari16 \
	  --log-level=warning --outfile=$@

portal-assets: $(PORTAL_JS)

## What the browser tests need: Debian's chromium (Playwright's own browser download is not reachable).
## CI runs as root on a fresh machine; elsewhere install it once with `sudo apt-get install chromium`.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; \
	  else echo "The browser tests need chromium: run sudo apt-get install chromium" >&2; exit 1; fi; }

## The main job: Lisa's story on a local anvil chain and IPFS node that the demo starts itself.
demo: setup
	$(VENV)/bin/medledger demo

## The whole test suite: lint, format and layering; types (mypy); contracts (brownie);
## fuzz/invariants (forge); Python tooling.
test: setup lint lint-sol types test-contracts test-forge test-python

# Every Python file of the project: the package, its tests, the contract tests, benchmarks and scripts.
PY_SOURCES := medledger tests bench scripts

## Python lint (ruff), formatting (ruff format --check) and the import layering contract (import-linter).
lint: setup
	$(VENV)/bin/ruff check $(PY_SOURCES)
	$(VENV)/bin/ruff format --check $(PY_SOURCES)
	$(VENV)/bin/lint-imports --no-cache

## mypy --strict on the package (configured in pyproject.toml).
types: setup
	$(VENV)/bin/mypy

test-types: types

test-contracts: setup
	$(PY) -m pytest tests/contracts -q -p no:cacheprovider

test-forge: setup
	forge test --root .

# Browser tests save a screenshot of each portal page under reports/portal/ (the test artifacts).
# Two workers (pytest-xdist), each with its own anvil, IPFS node and PostgreSQL: 418 s -> 264 s on
# two cores. PYTEST_WORKERS=0 runs them in this process (for a debugger or -x).
PYTEST_WORKERS ?= 2
test-python: setup postgres browser
	$(PY) -m pytest -p no:pytest-brownie tests/python -q -p no:cacheprovider -n $(PYTEST_WORKERS)

## Every benchmark under bench/ (figures, not tests): gas, ingest, the event index, CLI start-up and
## the portal. BENCH_FLAGS=--json prints each as one JSON object.
bench: setup postgres browser
	$(PY) bench/gas.py $(BENCH_FLAGS)
	$(PY) bench/ingest.py $(BENCH_FLAGS)
	$(PY) bench/index.py $(BENCH_FLAGS)
	$(PY) bench/cli.py $(BENCH_FLAGS)
	$(PY) bench/portal.py $(BENCH_FLAGS)

deploy: setup
	$(VENV)/bin/brownie run scripts/deploy.py --network anvil

## Regenerate the compiled contract shipped in the package (medledger/chain/data/Medledger.json) from
## contracts/ after a contract change; tests/python fail until it matches a fresh compile.
artifacts: setup
	$(VENV)/bin/medledger artifacts build

clean:
	rm -rf build reports .hypothesis

## Solidity lint: formatting (`forge fmt --check`, house style in foundry.toml) and solhint (.solhint.json).
## solhint is pinned in tools/lint (its own package and lock file); --disc: it never asks the network for updates.
.PHONY: lint-sol
lint-sol: setup tools/lint/node_modules/.installed
	forge fmt --root . --check interfaces contracts tests/forge
	tools/lint/node_modules/.bin/solhint --disc --noPoster --max-warnings 0 'contracts/**/*.sol' 'interfaces/**/*.sol'

tools/lint/node_modules/.installed: tools/lint/package.json tools/lint/package-lock.json
	npm --prefix tools/lint ci --no-audit --no-fund
	touch $@
