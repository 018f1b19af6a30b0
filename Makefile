# FabricOps: `make demo` runs the platform with the virtual lab, `make test` runs the test suite.
# Both work from a fresh clone: they create .venv and install requirements.txt first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`) when it answers, else SQLite under var/.
TEST_DATABASE_URL ?= $(shell $(PYTHON) -c "import socket;s=socket.socket();s.settimeout(1);print('postgresql://postgres@127.0.0.1:5432/test' if s.connect_ex(('127.0.0.1',5432))==0 else '')")
PYTEST_ARGS ?=

.PHONY: demo test lint install clean demo-packages test-packages web-assets

$(VENV)/.installed: requirements.txt
	@echo "==> creating $(VENV) and installing requirements.txt"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

install: $(VENV)/.installed

# Debian packages the platform and its tests use, installed in one apt-get run when missing (root, or sudo):
# InfluxDB 1.6 (tests and demo, behind the write-path proxy: docs/telemetry-storage.md), Node.js/npm (the UI's
# browser libraries), docker-compose 1.29 (validates docker/compose.yml; no Docker engine runs here) and
# Chromium (browser tests, driven by Playwright for Python; no browser download).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
define apt_install
	@missing=""; for pair in $(1); do cmd=$${pair%%:*}; pkgs=$${pair#*:}; \
		command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$(echo $$pkgs | tr , ' ')"; done; \
	if [ -n "$$missing" ]; then echo "==> installing$$missing (apt-get)"; \
		$(SUDO) sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing"; fi
endef
DEMO_PACKAGES := influxd:influxdb npm:nodejs,npm
TEST_PACKAGES := $(DEMO_PACKAGES) docker-compose:docker-compose chromium:chromium

demo-packages:
	$(call apt_install,$(DEMO_PACKAGES))

test-packages:
	$(call apt_install,$(TEST_PACKAGES))

# The UI's browser libraries (Cytoscape.js, htmx) from the npm registry, copied into fabric_ops/web/static/web/vendor/.
WEB_FRONTEND := fabric_ops/web/frontend
WEB_VENDOR := fabric_ops/web/static/web/vendor
$(WEB_VENDOR)/.installed: $(WEB_FRONTEND)/package.json $(WEB_FRONTEND)/package-lock.json $(WEB_FRONTEND)/vendor.js
	cd $(WEB_FRONTEND) && npm ci --no-audit --no-fund --loglevel=error && npm run --silent vendor
	@touch $@

web-assets: $(WEB_VENDOR)/.installed

test: install test-packages web-assets
	@mkdir -p var
	@echo "==> database: $(if $(TEST_DATABASE_URL),$(TEST_DATABASE_URL),SQLite under var/)"
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# SCENARIO=0 skips the scripted faults the demo injects after start-up.
SCENARIO ?= 1
demo: install demo-packages web-assets
	@mkdir -p var
	$(PY) manage.py demo --scenario $(SCENARIO)

clean:
	rm -rf var/ .pytest_cache
