# FabricOps: `make demo` runs the platform with the virtual lab, `make test` runs the test suite.
# Both work from a fresh clone: they create .venv and install requirements.txt first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`) when it answers, else SQLite under var/.
TEST_DATABASE_URL ?= $(shell $(PYTHON) -c "import socket;s=socket.socket();s.settimeout(1);print('postgresql://postgres@127.0.0.1:5432/test' if s.connect_ex(('127.0.0.1',5432))==0 else '')")
PYTEST_ARGS ?=

.PHONY: demo test lint bench install clean influxdb docker-compose web-assets chromium

$(VENV)/.installed: requirements.txt
	@echo "==> creating $(VENV) and installing requirements.txt"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

install: $(VENV)/.installed

# Debian's InfluxDB 1.6 for the telemetry tests and the demo (run behind the write-path proxy, docs/telemetry-storage.md).
influxdb:
	@command -v influxd >/dev/null || { echo "==> installing InfluxDB (apt-get)"; \
		$(if $(filter 0,$(shell id -u)),,sudo) sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq influxdb'; }

# Debian's docker-compose 1.29 validates docker/compose.yml in the tests (no Docker engine runs here).
docker-compose:
	@command -v docker-compose >/dev/null || { echo "==> installing docker-compose (apt-get)"; \
		$(if $(filter 0,$(shell id -u)),,sudo) sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose'; }

# The UI's browser libraries (Cytoscape.js, htmx) from the npm registry, copied into fabric_ops/web/static/web/vendor/.
WEB_FRONTEND := fabric_ops/web/frontend
WEB_VENDOR := fabric_ops/web/static/web/vendor
$(WEB_VENDOR)/.installed: $(WEB_FRONTEND)/package.json $(WEB_FRONTEND)/package-lock.json $(WEB_FRONTEND)/vendor.js
	@command -v npm >/dev/null || { echo "==> installing Node.js and npm (apt-get)"; \
		$(if $(filter 0,$(shell id -u)),,sudo) sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm'; }
	cd $(WEB_FRONTEND) && npm ci --no-audit --no-fund --loglevel=error && npm run --silent vendor
	@touch $@

web-assets: $(WEB_VENDOR)/.installed

# Debian's Chromium for the browser tests (driven by Playwright for Python; no browser download).
chromium:
	@test -x /usr/bin/chromium || { echo "==> installing Chromium (apt-get)"; \
		$(if $(filter 0,$(shell id -u)),,sudo) sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium'; }

test: install influxdb docker-compose web-assets chromium
	@mkdir -p var
	@echo "==> database: $(if $(TEST_DATABASE_URL),$(TEST_DATABASE_URL),SQLite under var/)"
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

demo: install influxdb web-assets
	@mkdir -p var
	$(PY) manage.py demo

clean:
	rm -rf var/ .pytest_cache
