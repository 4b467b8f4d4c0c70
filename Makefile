# inferq: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go

.PHONY: deps deps-test build test test-short demo bench fuzz lint

# deps installs what the demo, the build and the benchmarks need; deps-test
# adds what only the tests use: helm (the chart tests; minutes to build)
# and Chromium (the console's browser tests).
deps:
	@bash scripts/setup.sh

deps-test:
	@bash scripts/setup.sh --with-helm --with-browser

build: deps
	$(GO) build -o bin/ ./cmd/...

test: deps-test
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 40m ./...

# Unit tests only: skips the tests that start servers, by name.
test-short:
	$(GO) test -short -count=1 ./...

demo: deps
	$(GO) run ./cmd/demo

bench: deps
	$(GO) run ./cmd/bench
