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

.PHONY: all build tools test lint demo bench integration deps dataplanes clean

all: build

# Debian packages the tests use: ip (network namespaces), systemd-analyze
# (checks the units in deployments/systemd), gcc (the race detector needs
# cgo; static libc for the Kubernetes node's pause image), containerd, runc
# and zstd (the Kubernetes node of integration/kube).
deps:
	@command -v ip >/dev/null && command -v systemd-analyze >/dev/null && command -v gcc >/dev/null && \
		command -v containerd >/dev/null && command -v runc >/dev/null && command -v zstd >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			iproute2 systemd gcc libc6-dev containerd runc zstd)
	$(GO) mod download

# The prebuilt Kubernetes v1.34.4, Multus and crictl of the Kubernetes tier
# (integration/kube); without them the tier skips with one line.
USPACE_KUBERNETES_DIR ?= $(abspath $(CURDIR)/../shared/kubernetes)
export USPACE_KUBERNETES_DIR

# The real dataplanes (VPP 25.02, SPDK 24.09) for the real-dataplane test
# tier (integration/realdp) and the demo: unpacked from
# USPACE_DATAPLANES_DIR (default ../shared/dataplanes) into /opt, with their
# Debian run-time packages. A vpp/spdk_tgt the user already has (named by
# USPACE_VPP_BIN / USPACE_SPDK_BIN, or on PATH) is used as it is; with
# neither, nothing is installed and the tier skips, saying what is missing.
USPACE_DATAPLANES_DIR ?= $(abspath $(CURDIR)/../shared/dataplanes)
VPP_RUNTIME_DEBS  := libunwind8 libssl3
SPDK_RUNTIME_DEBS := librte-eal23 librte-vhost23 librte-bus-pci23 librte-pci23 librte-ethdev23 \
	librte-mbuf23 librte-mempool23 librte-mempool-ring23 librte-ring23 librte-hash23 librte-cryptodev23 \
	librte-dmadev23 librte-kvargs23 librte-meter23 librte-net23 librte-power23 librte-rcu23 \
	librte-telemetry23 librte-timer23 libaio1 libssl3 libkeyutils1 libuuid1 libnuma1 libfdt1 libbsd0 python3
dataplanes:
	@USPACE_DATAPLANES_DIR="$(USPACE_DATAPLANES_DIR)" VPP_DEBS="$(VPP_RUNTIME_DEBS)" SPDK_DEBS="$(SPDK_RUNTIME_DEBS)" \
		deployments/dataplanes/install.sh

build: deps
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS) -o $(BIN)/ $(addprefix ./cmd/,$(CMDS))

tools: deps
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS) -o $(BIN)/etcd go.etcd.io/etcd/server/v3
	$(GO) build $(GOFLAGS) -o $(BIN)/etcdctl go.etcd.io/etcd/etcdctl/v3
	$(GO) build $(GOFLAGS) -o $(BIN)/ github.com/containernetworking/plugins/plugins/ipam/host-local \
		github.com/containernetworking/plugins/plugins/main/bridge github.com/containernetworking/plugins/plugins/main/loopback

# The short-lived binaries (the CNI plugin runs once per ADD/DEL/CHECK) and
# the agent (exec'd in every container too) must not link the etcd server:
# its package initialisation alone costs more than host-local's whole exec.
# Only cmd/uspace-etcd links it (store/embedetcd), the child that
# `uspace-agent host --embedded-etcd` runs.
# The plugin links no etcd package at all, nor gRPC or protobuf: etcd's
# generated API registering itself was most of its start (store/lite).
LEAN_CMDS := ./cmd/userspace ./cmd/uspace-volume ./cmd/uspacectl ./cmd/uspace-agent

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@out=$$($(GO) list -deps $(LEAN_CMDS) | grep '^go.etcd.io/etcd/server'); if [ -n "$$out" ]; then \
		echo "$(LEAN_CMDS) must not link the etcd server, but link:"; echo "$$out"; exit 1; fi
	@out=$$($(GO) list -deps ./store | grep -E '/uspace/schema$$|^go.etcd.io/etcd/server'); if [ -n "$$out" ]; then \
		echo "./store must import neither schema nor the etcd server, but imports:"; echo "$$out"; exit 1; fi
	@out=$$($(GO) list -deps ./cmd/userspace | grep -E '^go.etcd.io/|^google.golang.org/(grpc|protobuf)|/uspace/store$$'); if [ -n "$$out" ]; then \
		echo "./cmd/userspace must link neither etcd's Go packages, gRPC, protobuf nor store (it speaks etcd through store/lite), but links:"; echo "$$out"; exit 1; fi

# Everything, unit and integration, in one run; under 20 minutes on 2 cores.
# The packages of concurrent code (and the in-process agent tests) run under
# the race detector, which needs cgo; everything else runs once without it,
# the Kubernetes tier last and alone (its node takes most of the machine).
RACE_PKGS := ./agent/... ./store/... ./cni/... ./volume/...
test: build tools dataplanes lint
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 10m $(RACE_PKGS)
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 10m -run '^TestInProcess' ./integration/hostagent/ ./integration/containeragent/
	$(GO) test -count=1 -timeout 14m $$($(GO) list ./... | grep -vE '/uspace/(agent|store|cni|volume)(/|$$)|/integration/kube$$')
	$(GO) test -count=1 -timeout 15m ./integration/kube/

integration: build tools dataplanes
	$(GO) test -count=1 -timeout 14m ./integration/...

# DURATION (default 10m) of random CNI ADD/DEL, volume and intent changes,
# containers with VPPs of their own and faults on a 3-host cluster whose
# first network spans the hosts, every invariant checked after each step
# and the dataplanes checked back where they started after a final drain
# (integration/cluster TestSoak). DATAPLANES=real runs it on real VPP 25.02
# and SPDK 24.09 (buffers, heap, API clients, interface indices and SPDK
# memory checked too, pings between containers); CYCLES=<n> ends it after
# n ADD/DEL cycles instead, DURATION still bounding it. Progress lines
# here, the whole log in bin/soak.log, the figures in bin/soak-summary.md;
# USPACE_SOAK_SEED=<seed> repeats a run. `make test` runs two minutes of
# the real one (TestSoakRealBrief).
DURATION ?= 10m
DATAPLANES ?= sim
CYCLES ?=
.PHONY: soak
soak: build tools $(if $(filter real,$(DATAPLANES)),dataplanes)
	@bash -o pipefail -c 'USPACE_SOAK_DURATION=$(DURATION) USPACE_SOAK_DATAPLANES=$(DATAPLANES) USPACE_SOAK_CYCLES=$(CYCLES) \
		$(GO) test -count=1 -timeout 0 -v -run "^TestSoak$$" ./integration/cluster/ 2>&1 \
		| tee $(BIN)/soak.log | grep --line-buffered -E "soak: |^(--- |PASS|FAIL|ok )|_test\.go:[0-9]+: "'

# The main job: etcd, agents, simulated VPP/SPDK, a real CNI ADD into a
# network namespace, a volume, then the state; cleans up on exit or Ctrl-C.
demo: build tools dataplanes
	BIN=$(BIN) deployments/demo/demo.sh

# The benchmark (integration/bench): floors first, then every figure as a
# ratio to them, all in one run on this machine, the real-dataplane rows and
# the Kubernetes row last (skipped with one line without VPP/SPDK or the
# node's binaries); prints the table and writes bin/bench-results.{json,md}
# (log: bin/bench.log). About 6 minutes on 2 cores. `make test` runs its quick version (BENCH_QUICK=1, under a minute,
# sanity checks only) as part of ./..., so it cannot rot.
bench: build tools dataplanes
	@bash -o pipefail -c 'USPACE_BENCH=full $(GO) test -count=1 -timeout 40m -v -run "^TestBench$$" ./integration/bench/ 2>&1 \
		| tee $(BIN)/bench.log | grep --line-buffered -v "^=== "'

.PHONY: bench-quick
bench-quick: build tools
	@bash -o pipefail -c 'BENCH_QUICK=1 $(GO) test -count=1 -timeout 5m -v -run "^TestBench$$" ./integration/bench/ 2>&1 \
		| tee $(BIN)/bench-quick.log | grep --line-buffered -v "^=== "'

# Container images, each FROM scratch with the static binaries
# (deployments/images/build.sh; PREFIX, TAG, VPP_IMAGE as it documents), and
# a local cluster of them (deployments/compose/): 3 etcd members on
# 127.0.0.1:23791-23793, two simulated hosts, an app container on host1.
USPACE_COMPOSE = $$(docker compose version >/dev/null 2>&1 && echo docker compose || echo docker-compose) -p uspace -f deployments/compose/docker-compose.yml
.PHONY: images cluster-up cluster-down
images: build tools
	BIN=$(BIN) deployments/images/build.sh

cluster-up: images
	COMPOSE_HTTP_TIMEOUT=$${COMPOSE_HTTP_TIMEOUT:-300} $(USPACE_COMPOSE) up -d
	@echo "etcd: 127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793   try: bin/uspacectl --etcd-endpoints 127.0.0.1:23791 get hosts"

cluster-down:
	COMPOSE_HTTP_TIMEOUT=$${COMPOSE_HTTP_TIMEOUT:-300} $(USPACE_COMPOSE) down -v --remove-orphans -t 5
	rm -rf deployments/compose/run

clean:
	rm -rf $(BIN)
