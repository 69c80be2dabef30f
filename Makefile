# Dispatcher — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
DATA ?= .data
ADDR ?= 127.0.0.1:8080
BENCHTIME ?= 2s
FUNCTIONS := api dispatch sweeper events webhooks
# The AWS emulator the integration tests use (moto, started by `make moto`; or LocalStack).
AWS_ENDPOINT_URL ?= http://127.0.0.1:4566
export AWS_ENDPOINT_URL
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
STAGE ?= dev
CDK_CONTEXT ?=
SAM_VENV ?= .venv-sam
SAM_CLI_VERSION := 1.170.0
CFN_LINT_VERSION := 1.58.0

.DEFAULT_GOAL := help
.PHONY: help dev dev-aws synth template-test sam-validate test test-short build build-functions moto lint bench bench-peer bench-init fuzz api-fuzz clean

help: ## List the targets.
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

dev: ## Run the whole product locally on the embedded store (API on $(ADDR), data in $(DATA)/).
	$(GO) run ./cmd/dispatcher serve --addr $(ADDR) --data $(DATA) $(ARGS)

# Packages that read moto's /moto-api/data.json run first, on a freshly reset emulator: that
# document lists every object moto ever created, and grows slow to fetch as the other suites run.
RECORD_READERS := ./internal/e2e/ ./internal/channel/ses/ ./internal/channel/sns/
# Emulator tests whose tables have a DynamoDB stream: moto cannot serialize
# stream records in /moto-api/data.json, so they run apart from the readers.
STREAM_TESTS := TestStatusWebhooksOnAWS

# Each company's API limit under `make dev-aws`: the stack's defaults (companyRateLimit,
# companyRateBurst); `make dev-aws DISPATCHER_COMPANY_RATE_LIMIT=2 DISPATCHER_COMPANY_RATE_BURST=5`
# to see 429s by hand.
DISPATCHER_COMPANY_RATE_LIMIT ?= 25
DISPATCHER_COMPANY_RATE_BURST ?= 50
# The AWS wiring against the local emulator: names of the resources --create-resources makes there.
DEV_AWS_ENV := AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
	DISPATCHER_TABLE_NAME=dev-dispatcher DISPATCHER_QUEUE_URL=$(AWS_ENDPOINT_URL)/123456789012/dev-dispatch \
	DISPATCHER_WEBHOOK_QUEUE_URL=$(AWS_ENDPOINT_URL)/123456789012/dev-webhooks \
	DISPATCHER_SCHEDULE_GROUP=dev-dispatcher DISPATCHER_SCHEDULER_ROLE_ARN=arn:aws:iam::123456789012:role/dev-scheduler \
	DISPATCHER_DISPATCH_FUNCTION_ARN=arn:aws:lambda:us-east-1:123456789012:function:dev-dispatch \
	DISPATCHER_SCHEDULER_DLQ_ARN=arn:aws:sqs:us-east-1:123456789012:dev-dispatch-dlq \
	DISPATCHER_DEFAULT_FROM_EMAIL=team@dev.example.com \
	DISPATCHER_COMPANY_RATE_LIMIT=$(DISPATCHER_COMPANY_RATE_LIMIT) DISPATCHER_COMPANY_RATE_BURST=$(DISPATCHER_COMPANY_RATE_BURST)

dev-aws: moto ## Run the AWS wiring (DynamoDB, SQS, Scheduler, SES, SNS) locally against moto on $(AWS_ENDPOINT_URL).
	$(DEV_AWS_ENV) $(GO) run ./cmd/dispatcher serve --backend aws --create-resources --addr $(ADDR) --data $(DATA)-aws $(ARGS)

test: lint moto build-functions ## Lint, start moto, then every test (unit, conformance, API, emulator, fuzz seeds) with -race.
	@curl -fsS -X POST $(AWS_ENDPOINT_URL)/moto-api/reset >/dev/null 2>&1 || true
	$(GO) test -race -count=1 -skip '$(STREAM_TESTS)' $(RECORD_READERS)
	$(GO) test -race -count=1 -run '$(STREAM_TESTS)' ./internal/e2e/
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v -e /internal/e2e -e /internal/channel/ses -e /internal/channel/sns)

test-short: ## Tests without the race detector, for a quick loop (emulator tests skip if moto is down).
	$(GO) test -count=1 ./...

moto: ## Install the pinned moto[server] into .venv/ and start it at $(AWS_ENDPOINT_URL) (no-op if up).
	scripts/moto.sh start

build: build-functions ## Build the CLI (build/dispatcher) and the Lambda functions (build/<fn>/bootstrap).
	$(GO) build -trimpath -o build/dispatcher ./cmd/dispatcher

build-functions: ## Build each Lambda function for linux/arm64 into build/<fn>/bootstrap.
	@for fn in $(FUNCTIONS); do \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags "-s -w" \
	    -o build/$$fn/bootstrap ./functions/$$fn || exit 1; \
	done
	@ls -l build/*/bootstrap | awk '{printf "  %-26s %6.1f MiB\n", $$NF, $$5/1048576}'

lint: ## gofmt, go vet, and go.mod/go.sum tidy.
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@cp go.mod /tmp/dispatcher.go.mod.bak && cp go.sum /tmp/dispatcher.go.sum.bak; \
	  $(GO) mod tidy; \
	  if ! git diff --quiet -- go.mod go.sum 2>/dev/null; then \
	    echo "go mod tidy changed go.mod/go.sum: commit the tidy result"; git --no-pager diff -- go.mod go.sum | head -40; exit 1; fi

bench: ## Benchmarks recorded in BENCHMARKS.md (about 5 minutes).
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./internal/contract/ ./internal/httpapi/ ./internal/bizhours/ ./internal/store/sqlite/ ./internal/timer/local/
	$(GO) test -run '^$$' -bench 'DispatchLag|Burst|WebhookDelivery' -benchtime 1x -timeout 30m ./internal/embedded/

bench-peer: ## Side by side with River on Postgres (installs Postgres from Debian, River from the module proxy): lag, burst, inserts, medians of 3 (~15 min; ARGS="-runs 1").
	scripts/bench-peer.sh $(ARGS)

bench-init: ## Lambda bootstraps: size (linux/arm64, gzip -9) and start → ready against a Runtime API stub, median of 5 (BENCHMARKS.md).
	$(GO) test -run '^$$' -bench Init -benchtime 1x -timeout 20m ./functions/

api-fuzz: ## Schemathesis (pinned, into .venv-st/) against a fresh `dispatcher serve`: every check, seed $${SEED:-42}, $${EXAMPLES:-20} examples per operation.
	scripts/schemathesis.sh

fuzz: ## Fuzz the create-body decoder+validator through the API for FUZZTIME (default 60s).
	$(GO) test -run '^$$' -fuzz FuzzCreate -fuzztime $${FUZZTIME:-60s} ./internal/httpapi/

clean: ## Remove build output and local data.
	rm -rf build cdk.out $(DATA) coverage.out

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

synth: build-functions node_modules/.package-lock.json ## Build the functions, then cdk synth (cdk-nag must pass) into cdk.out/ (STAGE=dev, CDK_CONTEXT="-c k=v …").
	npx cdk synth --quiet -c stage=$(STAGE) $(CDK_CONTEXT)

template-test: ## The CDK template tests (assertions, IAM, env contract, cdk-nag) on dummy binaries.
	$(GO) test -count=1 ./infra/... ./template-tests/

$(SAM_VENV)/bin/sam:
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q --disable-pip-version-check 'aws-sam-cli==$(SAM_CLI_VERSION)' 'cfn-lint==$(CFN_LINT_VERSION)'

sam-validate: synth $(SAM_VENV)/bin/sam ## sam validate --lint (SAM CLI + cfn-lint, pinned) on the synthesized template.
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --region us-east-1 -t cdk.out/Dispatcher-$(STAGE).template.json
