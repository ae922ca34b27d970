# Causeway build. The two commands a newcomer needs: `make dev` and `make test`.
# Every tool is installed by this Makefile, pinned, under the user cache dir.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO        ?= go
CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/causeway
TOOLS_BIN := $(CACHE_DIR)/tools/bin
export PATH := $(TOOLS_BIN):$(PATH)

# Pinned tool versions.
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
STATICCHECK_VERSION        := v0.8.2
HELM_VERSION               := v3.22.0
# protoc itself comes from Debian (bookworm): the version is checked, not assumed.
PROTOC_VERSION             := 3.21.12

HELM      := $(TOOLS_BIN)/helm-$(HELM_VERSION)
CHART     := deploy/helm/causeway
BIN       := bin/causeway
GOFLAGS_BUILD := -trimpath
TEST_TIMEOUT ?= 20m

# make install puts causeway into $(PREFIX)/bin; default: $(go env GOPATH)/bin.
PREFIX ?= $(shell $(GO) env GOPATH)

.PHONY: build install dev test test-short generate lint helm-lint bench tools clean kube-apiserver

build:
	$(GO) build $(GOFLAGS_BUILD) -o $(BIN) ./cmd/causeway

## install: build, then copy the binary to $(PREFIX)/bin (so `causeway ...` works as the dev guide prints it).
install: build
	install -d $(PREFIX)/bin
	install -m 0755 $(BIN) $(PREFIX)/bin/causeway
	@echo "installed $(PREFIX)/bin/causeway"

## dev: build, then run a whole 3-cluster clusterset on loopback.
dev: build
	@hack/ensure-apt.sh dig:bind9-dnsutils curl:curl || echo "note: install dig (bind9-dnsutils) and curl to follow the README's tour" >&2
	./$(BIN) dev $(DEV_ARGS)

## test: vet + race tests of everything, end-to-end included (helm for deploy's chart tests).
test: kube-apiserver $(HELM)
	$(GO) vet ./...
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...

## kube-apiserver: build (once, cached) the real kube-apiserver internal/testenv/kubetest runs.
kube-apiserver:
	hack/kube-apiserver.sh

## test-short: skip the slow end-to-end scenarios.
test-short:
	$(GO) vet ./...
	$(GO) test -race -short -timeout $(TEST_TIMEOUT) ./...

## generate: regenerate protobuf/gRPC code and the chart's mcs-api CRDs (committed).
generate: $(TOOLS_BIN)/protoc-gen-go $(TOOLS_BIN)/protoc-gen-go-grpc
	$(GO) run ./hack/gencrds
	hack/ensure-apt.sh protoc:protobuf-compiler
	@v=$$(protoc --version | awk '{print $$2}'); \
	  if [ "$$v" != "$(PROTOC_VERSION)" ]; then echo "protoc $$v found, $(PROTOC_VERSION) pinned" >&2; exit 1; fi
	protoc -I . -I /usr/include \
	  --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
	  api/causeway/v1/*.proto

lint: $(TOOLS_BIN)/staticcheck helm-lint
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...

## helm-lint: lint the chart with the values of a minimal and of a customised install.
helm-lint: $(HELM)
	helm lint --strict $(CHART) -f $(CHART)/ci/default-values.yaml
	helm lint --strict $(CHART) -f $(CHART)/ci/custom-values.yaml

## bench: HTTP through the tunnel vs direct, gateway vs an HAProxy mTLS pair (wrk, iperf3, 10k idle flows), DNS shim vs CoreDNS (dnsperf); results appended to bench/RESULTS.md.
bench: build
	bench/run.sh
	bench/gateway.sh
	bench/dns.sh
	bench/federation.sh

tools: $(TOOLS_BIN)/protoc-gen-go $(TOOLS_BIN)/protoc-gen-go-grpc $(TOOLS_BIN)/staticcheck $(HELM)

$(TOOLS_BIN)/protoc-gen-go:
	GOBIN=$(TOOLS_BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(TOOLS_BIN)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS_BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(TOOLS_BIN)/staticcheck:
	GOBIN=$(TOOLS_BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
# helm-<version> marks the pinned build; tests find `helm` on PATH.
$(HELM):
	GOBIN=$(TOOLS_BIN) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	touch $@

clean:
	rm -rf bin
