# The concurrency lab. `make help` lists the targets; each target of the lab is `lab <target>`, the console script
# `make setup` installs, which reads its knobs and options (MODE, BACKEND, RESUME, ...) from the environment, where
# make puts its variables: `make bench RESUME=1` and `RESUME=1 lab bench` are the same command, and the policy
# (which backend, when bench decides how to serve an app) is the lab's. Each knob is declared once, in
# contract/declared.py; `make knobs` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -o errexit -o pipefail -o nounset -c

PYTHON ?= python3
# every knob and setting the lab reads, for the commands below (an unset one empty: its default)
export $(shell $(PYTHON) -m contract.knobs names run machine compare)
VENV := .venv
PY := $(VENV)/bin/python
LAB := $(VENV)/bin/lab

# A bad knob, option or comparison setting (BASE, GATE, THRESHOLDS, ...: make bench and capacity judge THRESHOLDS too)
# stops every target here, before anything starts (also under `make -n`).
CHECKED := $(shell $(PYTHON) -m contract.knobs names run command compare)
KNOB_ERROR := $(shell $(foreach k,$(CHECKED),$(k)='$($(k))') $(PYTHON) -m contract.knobs check 2>&1)
$(if $(KNOB_ERROR),$(error $(KNOB_ERROR)))

.PHONY: help setup lock up down demo bench capacity compare serve worker report modes knobs logs ps engine engine-stop images k8s \
	test test-fast lint clean

help: ## show this help
	@echo "The concurrency lab: one endpoint, many ways to serve it, measured."
	@echo "Usage: make <target> [MODE=...] [WORKLOAD=io|cpu] [CPUS=1] [BACKEND=auto|native|compose] ..."
	@echo "Past one machine: make serve BIND=0.0.0.0 on the server's host; make bench|capacity TARGET=http://host:port;"
	@echo "  LOCUST_REMOTE_WORKERS=N LOCUST_BIND=0.0.0.0 on a bench or capacity for make worker MASTER=host on other hosts"
	@echo "Your own app: make bench EXPERIMENT=examples/apps/experiment.toml APP=package.module:app APP_DIR=folder"
	@echo "  PATHS=\"/a:3 /b?x=1\" or LOCUSTFILE=file, [APP_SETUP=command APP_REQUIREMENTS=file APP_ENV=file] (README: Your own app)"
	@echo "  make bench APP=... APP_DIR=... PATHS=... [CPUS=1 MEMORY=MB MINUTES=20]: which mode, workers and threads to deploy"
	@echo
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'
	@echo
	@echo "Modes (MODE=...):"
	@$(PYTHON) -m lab modes
	@echo
	@echo "Knobs (environment variables, default in brackets):"
	@$(PYTHON) -m lab knobs

# The native servers run on the same interpreter build as the stand-in images (Debian's python3.11)
# where the machine has it and it can make a venv: the same prime count costs about a fifth more
# CPU on a build without profile-guided optimisation. SERVER_PYTHON=... chooses another.
SERVER_PYTHON ?= $(or $(shell /usr/bin/python3.11 -c 'import ensurepip' 2>/dev/null && echo /usr/bin/python3.11),$(PYTHON))
INTERPRETER := $(VENV)/.interpreter-$(subst /,_,$(SERVER_PYTHON))

$(INTERPRETER):
	rm -rf $(VENV)
	$(SERVER_PYTHON) -m venv $(VENV)
	touch $@

# .venv installs dev.lock (pip and setuptools included), every file's hash checked; contract/ and the lab itself
# (its `lab` console script, pyproject.toml) are built by that setuptools, not fetched. A changed lock reinstalls;
# pip check says if a lock misses a dependency. uv installs the lock in seconds where pip takes a minute; it reads
# none of pip's configuration, so where it cannot reach the index (a mirror set up for pip alone), pip installs it.
# Both write every module's bytecode now: where PYTHONDONTWRITEBYTECODE is set, no process would ever write it,
# and each would compile numpy, scipy, Django... from source on every start.
$(VENV)/.installed: $(INTERPRETER) requirements/installer.lock requirements/dev.lock contract/pyproject.toml pyproject.toml
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements/installer.lock
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) --require-hashes --no-deps -r requirements/dev.lock \
		|| { echo "setup: uv could not install requirements/dev.lock: pip installs it" >&2; \
		$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements/dev.lock; }
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --editable ./contract
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --editable .
	$(PY) -m pip check
	touch $@

setup: $(VENV)/.installed ## create .venv with the pinned versions and the `lab` command (up, demo and test do it for you)

# One lock per environment from its short list of direct requirements (requirements/NAME.txt): dev first (the
# superset .venv runs), then the others held to dev's versions, so the images run what the native backend runs.
LOCK_WITH = $(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	--python-platform x86_64-unknown-linux-gnu --custom-compile-command 'make lock' \
	$(if $(filter 1 yes true,$(UPGRADE)),--upgrade)
lock: $(VENV)/.installed ## rebuild requirements/*.lock (every package and its hash) from requirements/*.txt; UPGRADE=1 takes the newest versions they allow
	$(LOCK_WITH) requirements/dev.txt -o requirements/dev.lock
	for name in lab services standins kubectl installer; do \
		$(LOCK_WITH) -c requirements/dev.lock requirements/$$name.txt -o requirements/$$name.lock; done

up: setup ## start PostgreSQL, the app in MODE under CPUS and the Locust web UI at :8089 (Ctrl-C stops)
	$(LAB) up

# `python -m lab down` is `lab down`: a .venv made before the console script existed stops what it started too
down: ## stop everything the lab started, on the backend that started it
	@if [ -x $(PY) ]; then $(PY) -m lab down; else echo "lab: nothing to stop (no .venv)"; fi

logs: setup ## follow the logs of the running lab
	@$(LAB) logs

ps: setup ## list the lab's processes or containers
	@$(LAB) ps

engine: setup ## make a Docker engine answer here (as root: install docker.io, start dockerd, add Compose v2)
	scripts/engine.sh start

engine-stop: ## stop the Docker engine `make engine` started (only that one)
	scripts/engine.sh stop

images: setup ## build the local stand-in images (IMAGES=local): Debian via debootstrap, no registry
	$(LAB) images

k8s: setup ## render Kubernetes manifests for MODE/CPUS/... into K8S_OUT (default k8s/out): kubectl apply -k
	$(LAB) k8s

demo: setup ## the post's quick check: N=2 concurrent requests against MODE, each timed
	$(LAB) demo

bench: setup ## run EXPERIMENT (quick, post, scaling, smoke) headless; RESUME=1 continues the last one; CALIBRATE=1 adds wrk; DETACH=1 runs it in the background; REPEATS=N runs each configuration N times; with APP= alone, decide how to serve the app within CPUS (MEMORY=MB, MINUTES=20)
	$(LAB) bench

capacity: setup ## the highest arrival rate MODE holds at p95 <= SLO_P95_MS (open arrivals); EXPERIMENT=capacity for many; with APP= and no MODE, decide as make bench APP= does
	$(LAB) capacity

serve: setup ## PostgreSQL and the app of MODE alone, for a lab on another host (TARGET); BIND=0.0.0.0 beyond loopback
	$(LAB) serve

worker: setup ## join the Locust of a bench on MASTER=host as LOCUST_WORKERS=N Locust workers, run after run (Ctrl-C stops)
	$(LAB) worker

report: setup ## build report.html, report.md and charts from RESULTS (default results/latest)
	$(LAB) report

compare: setup ## BASE=folder NEW=folder: each figure's change with its interval and a verdict (MIN_CHANGE=5%, COMPARE_ACROSS=knob, THRESHOLDS="p95<300ms rps>50"); GATE=1 fails where one is worse (GATE_UNSURE=fail: unsure too)
	$(LAB) compare

modes: ## list the server modes
	@$(PYTHON) -m lab modes

knobs: ## list the knobs and their defaults
	@$(PYTHON) -m lab knobs

test: setup ## run the test suite (real PostgreSQL, servers and Locust)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest

# tests/conftest.py marks `server` every test that starts PostgreSQL, a server, Locust or a bench
test-fast: setup ## the tests that need no server (statistics, model, records, parsing, reports), in under a minute
	$(PY) -m pytest -m "not server"

lint: setup ## ruff and mypy
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

clean: down ## stop the lab and remove its state (.lab); results/ stay
	rm -rf .lab
