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

.PHONY: setup demo test test-types test-contracts test-forge test-python bench deploy clean portal-assets browser

# The portal's script, bundled by esbuild from its sources and the npm packages (ethers, libsodium).
PORTAL_JS := medledger/portal/static/app.js
PORTAL_SRC := $(wildcard medledger/portal/web/*.js medledger/portal/web/pages/*.js)

setup: $(VENV)/.installed node_modules/.installed $(PORTAL_JS)

node_modules/.installed: package.json package-lock.json tools/postinstall.js
	npm install --no-audit --no-fund
	node tools/postinstall.js
	touch $@

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

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

## The whole test suite: types (mypy), contracts (brownie), fuzz/invariants (forge), Python tooling.
test: setup test-types test-contracts test-forge test-python

test-types: setup
	$(VENV)/bin/mypy

test-contracts: setup
	$(PY) -m pytest tests/contracts -q -p no:cacheprovider

test-forge: setup
	forge test --root .

# Browser tests save a screenshot of each portal page under reports/portal/ (the test artifacts).
test-python: setup browser
	$(PY) -m pytest -p no:pytest-brownie tests/python -q -p no:cacheprovider

bench: setup
	$(PY) bench/gas.py
	$(PY) bench/ingest.py
	$(PY) bench/portal.py

deploy: setup
	$(VENV)/bin/brownie run scripts/deploy.py

clean:
	rm -rf build reports .hypothesis
