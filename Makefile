# SignSecure backend. `make run` starts the product locally and `make test`
# runs every test against the local emulators; both install what they need.

SHELL := /bin/bash
GO ?= go
NPM ?= npm
FUNCTIONS := $(notdir $(wildcard functions/*))
BUILD_DIR := .build
RUNNER := .local/bin/local
NODE_STAMP := infra/local/node_modules/.package-lock.json

.PHONY: all run test e2e bench build lint deploy install emulators invoke routes clean

all: lint test

## install: install the local emulators from infra/local/package-lock.json
install: $(NODE_STAMP)

$(NODE_STAMP): infra/local/package.json infra/local/package-lock.json
	@command -v node >/dev/null || { echo "node is not installed: install Node.js 20 (https://nodejs.org) and retry" >&2; exit 1; }
	@command -v java >/dev/null || { echo "java is not installed: install a Java 17 runtime (for example apt-get install openjdk-17-jre-headless) and retry" >&2; exit 1; }
	$(NPM) ci --prefix infra/local --no-audit --no-fund
	@touch $@

$(RUNNER): $(shell find infra/local pkg -name '*.go' -not -path '*/node_modules/*') go.mod go.sum
	@mkdir -p $(dir $@)
	$(GO) build -o $@ ./infra/local

## run: start the emulators and serve the API on http://127.0.0.1:3000 until Ctrl-C
run: install $(RUNNER)
	$(RUNNER) run

## emulators: start only the emulators, for running go test by hand
emulators: install $(RUNNER)
	$(RUNNER) emulators

## test: run every test with the race detector against fresh emulators
test: install $(RUNNER)
	SIGNSECURE_E2E_RUNNER=$(abspath $(RUNNER)) $(RUNNER) exec -- $(GO) test -race -count=1 ./...

## e2e: run the end-to-end suite: it starts the local runner and drives only its HTTP API
e2e: install $(RUNNER)
	SIGNSECURE_E2E_RUNNER=$(abspath $(RUNNER)) $(RUNNER) exec -- $(GO) test -count=1 -v ./infra/e2e

## bench: run the benchmarks against DynamoDB Local
bench: install $(RUNNER)
	$(RUNNER) exec -- $(GO) test -run '^$$' -bench . -benchmem -count=1 ./...

## build: build every function as bootstrap for linux/arm64 under .build/<name>/
build:
	@for f in $(FUNCTIONS); do \
		GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -tags lambda.norpc \
			-o $(BUILD_DIR)/$$f/bootstrap ./functions/$$f || exit 1; \
	done
	@echo "built $(words $(FUNCTIONS)) functions under $(BUILD_DIR)/"

## lint: gofmt, go vet, and go mod tidy must change nothing
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@cp -p go.mod .go.mod.bak && cp -p go.sum .go.sum.bak; \
	$(GO) mod tidy; \
	diff -u .go.mod.bak go.mod && diff -u .go.sum.bak go.sum; status=$$?; \
	mv -f .go.mod.bak go.mod; mv -f .go.sum.bak go.sum; \
	if [ $$status -ne 0 ]; then echo "go mod tidy changes go.mod or go.sum; run it and commit"; exit 1; fi

## invoke: run one asynchronous function once with its sample event, e.g. make invoke FUNCTION=credit-alerts
invoke: install $(RUNNER)
	@test -n "$(FUNCTION)" || { echo "usage: make invoke FUNCTION=credit-alerts|event-dispatcher|email-sender|webhook-sender" >&2; exit 2; }
	$(RUNNER) invoke $(FUNCTION)

## routes: regenerate functions/*/main.go and the route functions in template.yaml
routes:
	$(GO) run ./infra/routegen

## deploy: build with SAM and deploy with samconfig.toml (needs the SAM CLI and AWS credentials)
deploy:
	sam build
	sam deploy

clean:
	rm -rf $(BUILD_DIR) .local/bin
