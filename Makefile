# Every target sets up what it needs, so `make run` and `make test` work on a
# fresh machine with nothing but Python 3.11, Debian's apt and PyPI.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= out

.PHONY: run test bench lint system venv clean

system:
	@missing=""; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v pdfsig >/dev/null || missing="$$missing poppler-utils"; \
	command -v qpdf >/dev/null || missing="$$missing qpdf"; \
	command -v certutil >/dev/null || missing="$$missing libnss3-tools"; \
	[ -f /usr/include/openssl/sha.h ] || missing="$$missing libssl-dev"; \
	command -v gcc >/dev/null || missing="$$missing gcc"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; \
	fi

$(STAMP): requirements.lock pyproject.toml setup.py ledger/merkle/_native.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

run: system venv
	LEDGER_PASSPHRASE=$${LEDGER_PASSPHRASE:-demo-passphrase-change-me} \
	  $(VENV)/bin/ledger demo --out $(OUT) --force

test: system venv
	$(PY) -m pytest -n 2 -q

bench: system venv
	$(PY) -m bench

lint: venv
	$(VENV)/bin/ruff check ledger identity signer witnesses gateway tests bench

clean:
	rm -rf $(VENV) $(OUT) bench/results.json
