# inferq: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go

.PHONY: deps build test test-short demo bench fuzz lint

deps:
	@bash scripts/setup.sh

build: deps
	$(GO) build -o bin/ ./cmd/...

test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 40m ./...

# Unit tests only: skips the tests that start servers, by name.
test-short:
	$(GO) test -short -count=1 ./...

demo: deps
	$(GO) run ./cmd/demo

bench: deps
	$(GO) run ./cmd/bench
