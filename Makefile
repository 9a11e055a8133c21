# Bookkeeping Desk (代账工作台)
#
#   make run     set up everything, then start the server (HOST, PORT, ARGS pass through:
#                make run HOST=0.0.0.0 PORT=8000 ARGS=--no-demo)
#   make test    set up everything, then ruff and the test suite on SQLite and on
#                PostgreSQL + Redis (TEST_DATABASE_URL, TEST_REDIS_URL; mandatory when CI is set;
#                PYTEST_ARGS="-k contracts -x" narrows both pytest runs)
#   make cluster N servers behind nginx with PostgreSQL and Redis (N=2; docs/deploy.md)

SHELL := /bin/bash

HOST ?= 127.0.0.1
PORT ?= 5000
ARGS ?=

.PHONY: help run test setup lint cluster

help:
	@sed -n '3,9p' Makefile | sed 's/^# \{0,1\}//'

run:
	@HOST='$(HOST)' PORT='$(PORT)' ARGS='$(ARGS)' exec bash scripts/run.sh

test:
	@bash scripts/setup.sh --test
	@exec bash scripts/test.sh $(PYTEST_ARGS)

cluster:
	@N='$(or $(N),2)' exec bash scripts/cluster.sh

setup:
	@bash scripts/setup.sh --test

lint:
	@bash scripts/setup.sh
	@.venv/bin/ruff check .
