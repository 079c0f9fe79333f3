# uspace: etcd-backed control plane for userspace container networking and storage.
# `make demo` runs the main job, `make test` runs the tests; both install what
# they need (Go modules, the real etcd/etcdctl built from this module).

GO        ?= go
BIN       := $(CURDIR)/bin
CMDS      := $(notdir $(wildcard cmd/*))
GOFLAGS   := -trimpath
# Static binaries: they run in FROM-scratch images and inside network namespaces.
export CGO_ENABLED := 0
export USPACE_BIN_DIR := $(BIN)

.PHONY: all build tools test lint demo bench integration deps clean

all: build

deps:
	@command -v ip >/dev/null || (apt-get update -qq && apt-get install -y -qq iproute2)
	$(GO) mod download

build: deps
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS) -o $(BIN)/ $(addprefix ./cmd/,$(CMDS))

tools: deps
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS) -o $(BIN)/etcd go.etcd.io/etcd/server/v3
	$(GO) build $(GOFLAGS) -o $(BIN)/etcdctl go.etcd.io/etcd/etcdctl/v3
	$(GO) build $(GOFLAGS) -o $(BIN)/host-local github.com/containernetworking/plugins/plugins/ipam/host-local

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Everything, unit and integration, in one run; well under 15 minutes on 2 cores.
test: build tools lint
	$(GO) test -count=1 -timeout 14m ./...

integration: build tools
	$(GO) test -count=1 -timeout 14m ./integration/...

# The main job: etcd, agents, simulated VPP/SPDK, a real CNI ADD into a
# network namespace, a volume, then the state; cleans up on exit or Ctrl-C.
demo: build tools
	BIN=$(BIN) deployments/demo/demo.sh

bench: build tools
	@echo "make bench: not yet — the benchmark lands with issue 14." >&2; exit 2

clean:
	rm -rf $(BIN)
