# mlgate — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO ?= go
# Pinned code-generation and client tools, installed into the repository so the
# versions here are the versions used (see `make tools`).
TOOLS := $(CURDIR)/bin/tools
BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPCURL_VERSION := v1.9.4
export PATH := $(TOOLS):$(PATH)

FUZZTIME ?= 3s

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: run
run: build $(TOOLS)/grpcurl ## start authsvc and predictsvc on the embedded defaults (Ctrl-C stops both)
	@scripts/run-local.sh

.PHONY: test
test: deps tools check-generated lint ## every check: generated code, lint, unit, bufconn, end-to-end, fuzz seeds
	CI=$${CI:-} $(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory fuzz-short

.PHONY: build
build: ## build bin/authsvc and bin/predictsvc
	$(GO) build -o bin/authsvc ./authsvc
	$(GO) build -o bin/predictsvc ./predictsvc

.PHONY: deps
deps: ## install missing Debian packages (protoc, grpc_python_plugin, python3-grpcio, python3-protobuf)
	@scripts/install-deps.sh

.PHONY: tools
tools: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc $(TOOLS)/grpcurl ## install the pinned Go tools into bin/tools

# Each tool is rebuilt when its pinned version changes (the stamp names it).
$(TOOLS)/buf: $(TOOLS)/.buf-$(BUF_VERSION)
$(TOOLS)/protoc-gen-go: $(TOOLS)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION)
$(TOOLS)/protoc-gen-go-grpc: $(TOOLS)/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION)
$(TOOLS)/grpcurl: $(TOOLS)/.grpcurl-$(GRPCURL_VERSION)

$(TOOLS)/.buf-%:
	GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$*
	@rm -f $(TOOLS)/.buf-* && touch $@
$(TOOLS)/.protoc-gen-go-grpc-%:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$*
	@rm -f $(TOOLS)/.protoc-gen-go-grpc-* && touch $@
$(TOOLS)/.protoc-gen-go-%:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$*
	@rm -f $(TOOLS)/.protoc-gen-go-v* && touch $@
$(TOOLS)/.grpcurl-%:
	GOBIN=$(TOOLS) $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$*
	@rm -f $(TOOLS)/.grpcurl-* && touch $@

.PHONY: generate
generate: tools ## regenerate gen/ from proto/ (needs protoc and grpc_python_plugin: see .ci/run)
	buf generate

.PHONY: check-generated
check-generated: generate ## fail when gen/ differs from what proto/ generates
	@if [ -n "$$(git status --porcelain -- gen/)" ]; then \
		git status --porcelain -- gen/; git diff --stat -- gen/; \
		echo "gen/ is stale: run 'make generate' and commit the result"; exit 1; fi

.PHONY: lint
lint: tools ## buf lint and breaking check, gofmt, go vet
	buf lint
	buf breaking --against '.git#branch=main'
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); \
		if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

.PHONY: fuzz-short
fuzz-short: ## run each fuzz target for FUZZTIME (default 3s)
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./internal/token
	$(GO) test -run '^$$' -fuzz '^FuzzCanonical$$' -fuzztime $(FUZZTIME) ./authsvc/internal/email
	$(GO) test -run '^$$' -fuzz '^FuzzValidate$$' -fuzztime $(FUZZTIME) ./authsvc/internal/password
	$(GO) test -run '^$$' -fuzz '^FuzzPredict$$' -fuzztime $(FUZZTIME) ./predictsvc/internal/prediction

.PHONY: fuzz
fuzz: ## run each fuzz target for a minute
	$(MAKE) fuzz-short FUZZTIME=60s

.PHONY: bench
bench: ## start the real services, load them, print throughput, latency, memory and the target ratios (~3 min)
	$(GO) run ./bench -out bench/results.json

.PHONY: docs
docs: ## regenerate docs/configuration.md from the flag definitions
	$(GO) test ./deploy -run TestConfigurationReference -update -count=1

.PHONY: model
model: ## retrain models/iris (needs Debian python3-sklearn and python3-onnx)
	/usr/bin/python3 models/iris/train_iris.py

.PHONY: clean
clean: ## remove build output (keeps data/)
	rm -rf bin
