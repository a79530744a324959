# The concurrency lab. `make help` lists the targets; knobs are environment variables (see
# `make knobs`), validated before anything starts. Defaults live in lab/knobs.py alone.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -o errexit -o pipefail -o nounset -c

PYTHON ?= python3
KNOBS := $(shell $(PYTHON) -m lab.knobs names)
export $(KNOBS) APP_PORT PG_PORT LOCUST_PORT DB_POOL_SIZE

BACKEND ?= auto
EXPERIMENT ?= quick
RESULTS ?= results/latest
LOCUST_WORKERS ?= 1
VENV := .venv
PY := $(VENV)/bin/python

# A bad knob stops every target here, before anything starts (also under `make -n`).
KNOB_ERROR := $(shell $(foreach k,$(KNOBS),$(k)='$($(k))') $(PYTHON) -m lab.knobs check 2>&1)
$(if $(KNOB_ERROR),$(error $(KNOB_ERROR)))

ifeq ($(BACKEND),auto)
# compose when a Docker engine answers, native otherwise
override BACKEND := $(shell timeout 5 docker info >/dev/null 2>&1 && echo compose || echo native)
endif
ifeq ($(filter $(BACKEND),native compose),)
$(error BACKEND=$(BACKEND) is not valid: BACKEND takes auto, native or compose)
endif
# The compose app service's image follows MODE: the mode table says which service serves it.
export SERVICE := $(shell $(foreach k,$(KNOBS),$(k)='$($(k))') $(PYTHON) -m lab.knobs service)
# Shown in full, so `make -n up BACKEND=compose` says exactly what would run.
COMPOSE = $(strip $(foreach k,$(KNOBS),$(if $($(k)),$(k)=$($(k))))) SERVICE=$(SERVICE) docker compose

.PHONY: help setup up down demo bench report modes knobs logs ps test lint clean

help: ## show this help
	@echo "The concurrency lab: one endpoint, many ways to serve it, measured."
	@echo "Usage: make <target> [MODE=...] [WORKLOAD=io|cpu] [CPUS=1] [BACKEND=auto|native|compose] ..."
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-8s %s\n", $$1, $$2}'
	@echo
	@echo "Modes (MODE=...):"
	@$(PYTHON) -m lab modes
	@echo
	@echo "Knobs (environment variables, default in brackets):"
	@$(PYTHON) -m lab knobs

$(VENV)/.installed: requirements/services.txt requirements/lab.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	touch $@

setup: $(VENV)/.installed ## create .venv with the pinned versions (up, demo and test do it for you)

# Documented once here; each backend gives the recipes below.
up: ## start PostgreSQL, the app in MODE under CPUS and the Locust web UI at :8089 (Ctrl-C stops)
down: ## stop everything the lab started
logs: ## follow the logs of the running lab
ps: ## list the lab's processes

ifeq ($(BACKEND),native)
up: setup
	$(PY) -m lab up

down:
	@if [ -x $(PY) ]; then $(PY) -m lab down; else echo "lab: nothing to stop (no .venv)"; fi

logs:
	tail -n 50 -F .lab/logs/*.log .lab/postgres/postgres.log

ps:
	@ps -o pid,pgid,pcpu,rss,args -p "$$(pgrep -d, -f '$(CURDIR)/(\.venv|\.lab)' || echo 0)" || echo "lab: nothing runs"
else
up:
	$(COMPOSE) up --build --scale locust-worker=$(LOCUST_WORKERS)

down:
	$(COMPOSE) down -v --remove-orphans

logs:
	$(COMPOSE) logs --follow

ps:
	$(COMPOSE) ps
endif

demo: setup ## the post's quick check: N=2 concurrent requests against MODE, each timed
	$(PY) -m lab demo --requests $${N:-2}

bench: setup ## run EXPERIMENT (quick, post, scaling, smoke) headless; RESUME=1 continues the last one; CALIBRATE=1 adds wrk
	$(PY) -m lab bench $(EXPERIMENT) --backend $(BACKEND) $(if $(filter 1 yes true,$(RESUME)),--resume) \
		$(if $(filter 1 yes true,$(CALIBRATE)),--calibrate)

report: setup ## build report.html, report.md and charts from RESULTS (default results/latest)
	$(PY) -m lab report $(RESULTS)

modes: ## list the server modes
	@$(PYTHON) -m lab modes

knobs: ## list the knobs and their defaults
	@$(PYTHON) -m lab knobs

test: setup ## run the test suite (real PostgreSQL, servers and Locust)
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: setup ## ruff
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean: down ## stop the lab and remove its state (.lab); results/ stay
	rm -rf .lab
