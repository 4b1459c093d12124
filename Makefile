# The two commands: `make run` and `make test`. Everything installs into .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed
SYSTEM_STAMP := var/.system-packages
# Debian packages the services need: a CJK font to embed in PDFs, poppler's pdftotext/pdffonts for tests.
DEBIAN_PACKAGES := fonts-wqy-microhei fonts-droid-fallback poppler-utils

.PHONY: install system-packages run test test-fast bench fuzz chaos compose-test clean

install: $(STAMP) $(SYSTEM_STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

$(SYSTEM_STAMP):
	@mkdir -p var
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	touch $@

system-packages: $(SYSTEM_STAMP)

# Embedded mode (no AMQP_URL): one process, SQLite under var/, the embedded broker, mail into var/outbox/.
# With AMQP_URL and DATABASE_URL: every service as its own gunicorn + worker processes.
run: install
	@if [ -n "$$AMQP_URL" ]; then \
	  PORT=$(PORT) exec $(PY) -m crmkit.supervise; \
	else \
	  echo "Starting the CRM on http://127.0.0.1:$(PORT) (embedded mode: SQLite, embedded broker, mail to var/outbox/)"; \
	  exec $(VENV)/bin/gunicorn -c deploy/gunicorn.conf.py -b 127.0.0.1:$(PORT) -w 1 --threads 16 \
	    'services.embedded:create_app()'; \
	fi

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -q tests/unit tests/service $(PYTEST_ARGS)

bench: install
	$(PY) -m bench $(if $(QUICK),--quick) $(if $(VOLUME),--volume $(VOLUME))

fuzz: install
	$(PY) -m pytest -q tests/fuzz --fuzz-examples=$${FUZZ_EXAMPLES:-500}

chaos: install
	$(PY) -m bench.chaos $(CHAOS_ARGS)

# Builds the images with podman (deploy/local-images.sh), runs the seed flow and a scaled worker in containers.
compose-test: install
	$(PY) deploy/compose_test.py --build

clean:
	rm -rf var/ .pytest_cache
