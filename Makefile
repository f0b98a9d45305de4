# LST Fusion — set-up, tests and the demo. Two commands on a fresh machine:
#   make install   # QGIS + Xvfb from Debian, .venv with the pinned Python packages
#   make test      # the whole test suite, offscreen
SHELL := /bin/bash
.DEFAULT_GOAL := help
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := qgis python3-qgis qgis-providers python3-rasterio python3-scipy python3-matplotlib python3-venv xvfb xauth
export QT_QPA_PLATFORM ?= offscreen
export XDG_RUNTIME_DIR ?= /tmp/runtime-$(shell id -u)

.PHONY: help install apt venv stage test test-qgis-debian13 test-qgis-sid lint package deploy demo demo-online qgis-process bench experiment clean

help:
	@echo "make install       install QGIS (apt) and the Python environment (.venv); idempotent"
	@echo "make test          run the test suite offscreen (ARGS='-k fuse' passes pytest arguments)"
	@echo "make demo          run the pipeline headless with qgis_process on sample data"
	@echo "make demo-online AOI='xmin,xmax,ymin,ymax [EPSG:4326]' START=… END=…   download and fuse (internet)"
	@echo "make experiment    the survey's experiment on sample data, reduced for 2 CPU cores (bench/results/)"
	@echo "make package       build dist/lst_fusion_plugin.zip (QGIS: Install from ZIP)"
	@echo "make deploy        install the plugin into the default QGIS profile"
	@echo "make qgis-process ARGS='list'   qgis_process with the plugin enabled"
	@echo "make test-qgis-debian13 | test-qgis-sid   the QGIS tests on QGIS 3.40 / 3.44 in a Debian chroot (root)"
	@echo "make lint | bench | clean"

install: apt venv stage

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo ">> apt: installing $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	else echo ">> apt: QGIS, rasterio and Xvfb already installed"; fi

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt constraints.txt $(wildcard lst_fusion_plugin/requirements/*.txt)
	@[ -x $(PY) ] || { echo ">> creating $(VENV) from /usr/bin/python3 (--system-site-packages: sees QGIS, numpy, rasterio)"; /usr/bin/python3 -m venv --system-site-packages $(VENV); }
	@echo ">> pip: installing requirements.txt (torch CPU, onnx, onnxruntime, pytest, pytest-qgis, ruff)"
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -r requirements.txt
	@touch $@

stage:
	@$(PY) scripts/build_plugin.py stage

test: stage lint
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	$(PY) -m pytest $(ARGS)

# The QGIS tests on Debian 13's QGIS 3.40 LTR (and unstable's 3.44) in a chroot cached in
# /var/cache/lst-fusion; the plugin's installer sets up a fresh profile there first (needs root).
test-qgis-debian13:
	@bash scripts/debian_qgis.sh trixie $(ARGS)

test-qgis-sid:
	@bash scripts/debian_qgis.sh sid $(ARGS)

lint:
	$(VENV)/bin/ruff check .
	$(PY) scripts/qt6_lint.py lst_fusion_plugin scripts tests

package:
	$(PY) scripts/build_plugin.py package

deploy:
	$(PY) scripts/build_plugin.py deploy

qgis-process: stage
	@scripts/qgis_process $(ARGS)

demo: stage
	@$(PY) scripts/demo.py

# Needs internet: downloads the area's LST from the Planetary Computer and fuses the season.
demo-online: stage
	@test -n "$(AOI)" -a -n "$(START)" -a -n "$(END)" || { echo 'usage: make demo-online AOI="xmin,xmax,ymin,ymax [EPSG:4326]" START=YYYY-MM-DD END=YYYY-MM-DD'; exit 2; }
	@scripts/qgis_process run examples/lst_download_to_season.model3 -- "EXTENT=$(AOI)" START=$(START) END=$(END) \
	    download:downloaded=demo_online/downloaded fuse:fused=demo_online/fused

experiment: stage
	@$(PY) bench/experiment.py --preset cpu

bench:
	@for b in bench/bench_*.py; do echo ">> $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build dist demo_output .pytest_cache
