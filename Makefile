# vllm-stack-e2e — every target provisions what it needs; see README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CLUSTER ?= lab
PROFILE ?=
PYTEST_ARGS ?=
JUNIT ?= reports/junit.xml
STAMP := $(VENV)/.installed
# Settings the harness reads from the environment, also when given as make variables
# (exported only when set, so an unset one stays unset).
$(foreach v,KEEP EXTRA_VALUES VLLM_CHART CHART_VERSION REPORTS_DIR KUBECONFIG EDITION ENGINE FIX_DEFECTS,$(if $(value $(v)),$(eval export $(v))))

.PHONY: help venv tools lab-build lab-up lab-down lab-status test unit integration e2e e2e-beyond bench preflight clean gate tutorial-diff upstream-report

help:
	@echo "make e2e        the tutorial's steps 1-8 end to end, nothing else (CLUSTER=lab by default; CLUSTER=current for your kube context; EDITION=…, see make editions)"
	@echo "make editions   the page's published editions the harness pins (EDITION=<name>)"
	@echo "make e2e-beyond the scenarios beyond the page (marker beyond), on a stack steps 1-4 stand up"
	@echo "make test       everything CI proves: unit, integration, every edition, beyond, self-tests (ONLY=run,…)"
	@echo "make bench      load generator and simulator benchmarks"
	@echo "make lab-build | lab-up | lab-down | lab-status   the local lab"
	@echo "make preflight  checks in seconds, installs nothing"
	@echo "make gate CHART_VERSION=x.y.z   release gate on your cluster (verdict.json; exit 0 only on pass)"
	@echo "make clean      remove namespaces left by earlier runs"
	@echo "make tutorial-diff TUTORIAL=page.rst|page.md|URL [EDITION=…]   how a published page differs from the pinned edition"
	@echo "make upstream-report [REPORT=reports/<run-id>|reports/suite-*]   an upstream issue draft per defect a run met"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

venv: $(STAMP)

# apt lists are needed to fetch Debian's prometheus (.deb unpacked into the cache, no service).
# Debian packages the tests use: shellcheck (lints observability/*.sh and the workflows' scripts),
# iproute2 + util-linux (the lab gives KEDA its own network and mount namespace; `ss` samples the
# CLUSTER=current rehearsal's connections), socat (the lab's pods' port-forwards close as a kubelet's
# do when the client leaves). Installed when missing and root; otherwise the tests that need them say so.
DEBIAN_TOOLS := shellcheck:shellcheck ip:iproute2 ss:iproute2 unshare:util-linux socat:socat
tools: venv
	@apt-cache policy prometheus 2>/dev/null | grep -q 'Candidate: [0-9]' || { [ "$$(id -u)" = 0 ] && apt-get update -qq || true; }
	@missing=$$(for t in $(DEBIAN_TOOLS); do command -v $${t%%:*} >/dev/null || echo $${t#*:}; done); \
	  if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ]; then echo "installing Debian packages: $$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
	$(PY) -m vllm_stack_e2e.tools helm kubectl prometheus2

lab-build: tools
	$(VENV)/bin/vllm-stack-lab build

lab-up: lab-build
	$(VENV)/bin/vllm-stack-lab up

lab-down: venv
	$(VENV)/bin/vllm-stack-lab down

lab-status: venv
	$(VENV)/bin/vllm-stack-lab status

unit: tools
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: lab-build
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

# Everything CI proves — unit, integration, the page in every edition, every scenario beyond it,
# the harness's self-tests — as pytest runs the suite schedules side by side on one lab, apart where
# they would collide (docs/suite.md; `python -m vllm_stack_e2e.suite --list` shows the plan). Logs,
# JUnit files and reports under reports/suite-<time>/; it ends with where the time went.
test: lab-build
	$(PY) -m vllm_stack_e2e.suite $(if $(SUITE_JOBS),--jobs=$(SUITE_JOBS)) $(if $(ONLY),--only=$(ONLY))

# The page, and only the page: the scenarios beyond it (marker beyond) have their own target.
E2E = $(PY) -m pytest tests/e2e --cluster=$(CLUSTER) $(if $(PROFILE),--profile=$(PROFILE)) --junitxml=$(JUNIT)
e2e: lab-build
	$(E2E) -m "not beyond" $(PYTEST_ARGS)

e2e-beyond: lab-build
	$(E2E) -m beyond $(PYTEST_ARGS)

preflight: tools
	$(PY) -m vllm_stack_e2e.preflight --cluster=$(CLUSTER)

bench: lab-build
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; }
	$(PY) scripts/bench.py
	@if ls $${REPORTS_DIR:-reports}/*/run.json >/dev/null 2>&1; then $(PY) -m vllm_stack_e2e.floors; \
	  else echo "(c) e2e wall time ÷ controller floor: no run yet — make e2e first"; fi

# The release gate: the whole tutorial on your kube context (CLUSTER=current unless CLUSTER is
# given) against one exact chart version; writes reports/<run-id>/verdict.json, exits 0 only on
# a release pass. It refuses the lab's stand-in chart; DRY_RUN=1 exercises it on the lab anyway.
GATE_CLUSTER = $(if $(filter command line environment,$(origin CLUSTER)),$(CLUSTER),current)

gate: $(if $(filter lab,$(GATE_CLUSTER)),lab-build,tools)
	$(PY) -m vllm_stack_e2e.gate --chart-version="$(CHART_VERSION)" --cluster=$(GATE_CLUSTER) $(if $(PROFILE),--profile=$(PROFILE)) $(if $(filter 1 true yes,$(DRY_RUN)),--dry-run)

clean: venv
	$(PY) -m vllm_stack_e2e.sweep --cluster=$(CLUSTER)

# Drift check: how a published autoscaling-keda.rst differs from the edition pinned here
# (values keys, addresses, commands); the edition is guessed from the page unless EDITION is set.
tutorial-diff: venv
	@[ -n "$(TUTORIAL)" ] || { echo "error: TUTORIAL is not set — give the page: make tutorial-diff TUTORIAL=path/or/URL/of/autoscaling-keda.rst" >&2; exit 2; }
	$(PY) -m vllm_stack_e2e.tutorial_diff "$(TUTORIAL)" $(if $(EDITION),--edition=$(EDITION))

# Upstream issue drafts: <run>/upstream/defect-<N>.md for each upstream defect the run met (preflight
# findings, xfails), with the page's values and commands, what the run saw and the harness's fix;
# an index on stdout. REPORT: a run folder or a suite folder; default the newest run under reports/.
upstream-report: venv
	$(PY) -m vllm_stack_e2e.report.upstream $(if $(REPORT),"$(REPORT)")

# The editions of the page the harness pins (vllm_stack_e2e.editions: one record each).
.PHONY: editions
editions: venv
	@$(PY) -m vllm_stack_e2e.editions
