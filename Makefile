# The two quickstart commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.installed-runtime
TEST_STAMP := $(VENV)/.installed-test
BUILDBOT_VENV := .cache/peers/buildbot-venv
BUILDBOT_STAMP := $(BUILDBOT_VENV)/.installed
HASS_VENV := .cache/peers/hass-venv
TEST_PEERS := chromium fonts-dejavu-core dovecot-imapd prometheus-alertmanager mosquitto mosquitto-clients \
    alsa-utils espeak-ng systemd iproute2 fonts-noto-cjk gettext strace
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: run test bench check lint clean addon catalogs

# `make run` installs what running needs and nothing more; `make test` adds the test extras on top.
# Each has its own stamp, so `make run` after `make test` installs nothing. pip shows its progress.
$(RUNTIME_STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	@echo "installing the runtime into $(VENV) (about 125 MB, 30-60 s with a warm pip cache; longer on a first download)"
	$(BIN)/pip install --progress-bar on --upgrade pip
	$(BIN)/pip install --progress-bar on -c requirements.lock -e .
	touch $(RUNTIME_STAMP)

$(TEST_STAMP): $(RUNTIME_STAMP)
	@echo "installing the test extras into $(VENV) (about 615 MB more: OpenCV, onnxruntime, Playwright ...)"
	$(BIN)/pip install --progress-bar on -c requirements.lock -e '.[test]'
	touch $(TEST_STAMP)

# Buildbot is a real peer of the webhook tests; it lives in a virtualenv of its own (155 MB).
$(BUILDBOT_STAMP):
	$(PYTHON) -m venv $(BUILDBOT_VENV)
	$(BUILDBOT_VENV)/bin/pip install --quiet 'buildbot[bundle]==4.3.0' 'buildbot-worker==4.3.0'
	touch $(BUILDBOT_STAMP)

run: $(RUNTIME_STAMP)
	$(BIN)/lamplighter run

test: $(TEST_STAMP) $(BUILDBOT_STAMP)
	scripts/ensure-debian-packages $(TEST_PEERS)
	PYTHON=$(PYTHON) scripts/ensure-hass-venv $(HASS_VENV)
	scripts/ensure-kasa-simulator
	scripts/ensure-bookworm-rootfs
	$(BIN)/python -m pytest

bench: $(TEST_STAMP)
	PYTHON=$(PYTHON) scripts/ensure-hass-venv $(HASS_VENV)
	scripts/ensure-kasa-simulator
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/storm.py
	$(BIN)/python bench/batch.py
	$(BIN)/python bench/footprint.py
	$(BIN)/python bench/camera.py
	$(BIN)/python bench/hooks.py
	$(BIN)/python bench/mail.py
	$(BIN)/python bench/slack.py
	$(BIN)/python bench/drivers.py
	scripts/ensure-debian-packages mosquitto
	$(BIN)/python bench/vs_homeassistant.py
	$(BIN)/python bench/retention.py
	$(BIN)/python bench/reload.py
	$(BIN)/python bench/hub.py

check: $(RUNTIME_STAMP)
	$(BIN)/lamplighter check

lint: $(RUNTIME_STAMP)
	$(BIN)/pip install --quiet mypy==2.4.1 ruff==0.17.6 types-PyYAML==6.0.12.20261113
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) .pytest_cache

# The Home Assistant app, ready to copy into Home Assistant's /addons/: the wheel and the lock beside its Dockerfile.
ADDON := packaging/home-assistant/lamplighter
addon: $(RUNTIME_STAMP)
	rm -f $(ADDON)/lamplighter-*.whl
	$(BIN)/pip wheel --no-deps --wheel-dir $(ADDON) .
	cp requirements.lock $(ADDON)/
	rm -rf build

# The message catalogs (src/lamplighter/i18n.py says how to add a message): extract every _() and N_(),
# write the English catalog, merge new messages into the Korean one, compile both (.mo files are committed).
LOCALE_DIR := src/lamplighter/locale
catalogs:
	scripts/ensure-debian-packages gettext
	xgettext --language=Python --from-code=UTF-8 --keyword=_ --keyword=N_ --no-wrap --sort-by-file \
	    --package-name=lamplighter --output=$(LOCALE_DIR)/lamplighter.pot $$(find src/lamplighter -name '*.py' | sort)
	msgen --no-wrap --lang=en $(LOCALE_DIR)/lamplighter.pot --output-file=$(LOCALE_DIR)/en/LC_MESSAGES/lamplighter.po
	msgmerge --quiet --update --backup=none --no-wrap --no-fuzzy-matching \
	    $(LOCALE_DIR)/ko/LC_MESSAGES/lamplighter.po $(LOCALE_DIR)/lamplighter.pot
	for po in $(LOCALE_DIR)/*/LC_MESSAGES/lamplighter.po; do msgfmt --check-format --check-domain --output-file=$${po%.po}.mo $$po; done
