# Dispatcher — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
DATA ?= .data
ADDR ?= 127.0.0.1:8080
BENCHTIME ?= 2s
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1

.DEFAULT_GOAL := help
.PHONY: help dev test test-short build lint bench fuzz tidy clean

help: ## List the targets.
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

dev: ## Run the whole product locally on the embedded store (API on $(ADDR), data in $(DATA)/).
	$(GO) run ./cmd/dispatcher serve --addr $(ADDR) --data $(DATA) $(ARGS)

test: lint ## Lint, then every test (unit, conformance, API, fuzz seed corpus) with the race detector.
	$(GO) test -race -count=1 ./...

test-short: ## Tests without the race detector, for a quick loop.
	$(GO) test -count=1 ./...

build: ## Build the CLI into build/dispatcher.
	$(GO) build -trimpath -o build/dispatcher ./cmd/dispatcher

lint: ## gofmt, go vet, and go.mod/go.sum tidy.
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@cp go.mod /tmp/dispatcher.go.mod.bak && cp go.sum /tmp/dispatcher.go.sum.bak; \
	  $(GO) mod tidy; \
	  if ! git diff --quiet -- go.mod go.sum 2>/dev/null; then \
	    echo "go mod tidy changed go.mod/go.sum: commit the tidy result"; git --no-pager diff -- go.mod go.sum | head -40; exit 1; fi

bench: ## Benchmarks recorded in BENCHMARKS.md (about 2 minutes).
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./internal/comms/ ./internal/httpapi/ ./internal/bizhours/ ./internal/store/sqlite/ ./internal/timer/local/
	$(GO) test -run '^$$' -bench 'DispatchLag|Burst' -benchtime 1x ./internal/app/

fuzz: ## Fuzz the create-body decoder+validator through the API for FUZZTIME (default 60s).
	$(GO) test -run '^$$' -fuzz FuzzCreate -fuzztime $${FUZZTIME:-60s} ./internal/httpapi/

clean: ## Remove build output and local data.
	rm -rf build cdk.out $(DATA) coverage.out
