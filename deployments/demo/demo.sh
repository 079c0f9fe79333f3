#!/usr/bin/env bash
# uspace demo: the whole flow on one machine, with nothing installed but what
# `make build tools` puts in bin/. VPP and SPDK are SIMULATED here
# (uspace-vppsim, uspace-spdksim speak their real wire protocols); to use real
# ones, start the host agent with --vpp-socket /run/vpp/api.sock and
# --spdk-socket /var/tmp/spdk.sock instead. etcd runs embedded in the host
# agent (--embedded-etcd), the default single-host set-up.
set -euo pipefail

BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin}
HOST=demo-host
CID=demo-$(printf '%04x' $$)
NETNS=uspace-demo-$$
WORK=$(mktemp -d /tmp/uspace-demo.XXXX)
ETCD=http://127.0.0.1:${USPACE_DEMO_ETCD_PORT:-23790}
PEER=http://127.0.0.1:${USPACE_DEMO_PEER_PORT:-23800}
PIDS=()
export USPACE_ETCD_ENDPOINTS=$ETCD ETCDCTL_ENDPOINTS=$ETCD

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }

cleanup() {
	set +e
	if [ -n "${ADDED:-}" ]; then
		step "CNI DEL (removes the intents; the agents tear down what they built)"
		cni DEL >/dev/null && note "deleted"
	fi
	# jobs -p also names a process started just as Ctrl-C came, before
	# its pid reached PIDS.
	for pid in "${PIDS[@]}" $(jobs -p); do kill "$pid" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$NETNS" 2>/dev/null
	rm -rf "$WORK"
	printf '\ncleaned up: processes stopped, namespace %s and %s removed\n' "$NETNS" "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # name, log, command...
	local name=$1 log=$WORK/$2.log
	shift 2
	"$@" >"$log" 2>&1 &
	PIDS+=($!)
	note "$name: pid $! (log $log)"
}

wait_for() { # what, seconds, command...
	local what=$1 deadline=$((SECONDS + $2))
	shift 2
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then
			echo "timed out waiting for $what" >&2
			exit 1
		fi
		sleep 0.1
	done
}

cni() { # the way a container runtime calls a CNI plugin: env + config on stdin
	CNI_COMMAND=$1 CNI_CONTAINERID=$CID CNI_NETNS=/var/run/netns/$NETNS CNI_IFNAME=net1 \
		CNI_PATH=$BIN CNI_ARGS="K8S_POD_NAMESPACE=demo;K8S_POD_NAME=demo-pod" \
		"$BIN/userspace" <"$WORK/net.conf"
}

for b in etcdctl uspace-agent uspace-vppsim uspace-spdksim userspace uspace-volume uspacectl; do
	[ -x "$BIN/$b" ] || { echo "missing $BIN/$b: run 'make build tools' (make demo does)" >&2; exit 1; }
done

step "dataplanes: VPP and SPDK are SIMULATED (wire-level: GoVPP binary API socket, SPDK JSON-RPC)"
note "with real ones, start the host agent with --vpp-socket /run/vpp/api.sock --spdk-socket /var/tmp/spdk.sock"
mkdir -p "$WORK/host/vhost/block/sockets"
start "host VPP (uspace-vppsim)" vppsim "$BIN/uspace-vppsim" --socket "$WORK/host/vpp-api.sock" --runtime-dir "$WORK/host"
start "SPDK (uspace-spdksim)" spdksim "$BIN/uspace-spdksim" -r "$WORK/host/spdk.sock" -S "$WORK/host/vhost/block/sockets"
wait_for "VPP socket" 10 test -S "$WORK/host/vpp-api.sock"
wait_for "SPDK socket" 10 test -S "$WORK/host/spdk.sock"

step "host agent for $HOST with an embedded single-member etcd on $ETCD (data in $WORK/etcd)"
note "the agent watches /uspace/v1/hosts/$HOST/; etcdctl below is the real one"
start "uspace-agent host --embedded-etcd" host-agent "$BIN/uspace-agent" host --host "$HOST" \
	--embedded-etcd "$WORK/etcd" --etcd-endpoints "$ETCD" --embedded-etcd-peer-url "$PEER" \
	--vpp-socket "$WORK/host/vpp-api.sock" --spdk-socket "$WORK/host/spdk.sock" \
	--shared-dir "$WORK/shared" --volume-root "$WORK/host/vhost" --metrics-addr 127.0.0.1:0
wait_for "etcd" 30 "$BIN/etcdctl" endpoint health
wait_for "host agent registration" 30 sh -c "'$BIN/etcdctl' get --print-value-only /uspace/v1/hosts/$HOST/agent | grep -q Agent"
note "registered: $("$BIN/etcdctl" get --print-value-only /uspace/v1/hosts/$HOST/agent)"

step "network namespace $NETNS and a real CNI ADD through the 'userspace' plugin"
ip netns add "$NETNS"
cat >"$WORK/net.conf" <<CONF
{
  "cniVersion": "1.0.0", "type": "userspace", "name": "memif-network",
  "host": {"engine": "vpp", "iftype": "memif", "netType": "bridge",
           "memif": {"role": "master", "mode": "ethernet"}, "bridge": {"bridgeName": "4"}},
  "container": {"engine": "vpp", "iftype": "memif", "netType": "interface",
                "memif": {"role": "slave", "mode": "ethernet"}},
  "sharedDir": "$WORK/shared",
  "uspace": {"etcd": {"endpoints": ["$ETCD"]}, "host": "$HOST", "addTimeout": "10s"}
}
CONF
note "config: the upstream userspace CNI format plus a 'uspace' section"
cni ADD >"$WORK/add-result.json"
ADDED=1
note "CNI result:"
sed 's/^/      /' "$WORK/add-result.json"

step "container agent with the container's own (simulated) VPP"
start "container VPP (uspace-vppsim)" ctr-vppsim "$BIN/uspace-vppsim" --socket "$WORK/ctr/vpp-api.sock" --runtime-dir "$WORK/ctr"
wait_for "container VPP socket" 10 test -S "$WORK/ctr/vpp-api.sock"
start "uspace-agent container" ctr-agent "$BIN/uspace-agent" container --host "$HOST" --container-id "$CID" \
	--vpp-socket "$WORK/ctr/vpp-api.sock" --shared-dir "$WORK/shared"
wait_for "container agent status" 30 sh -c "'$BIN/etcdctl' get --print-value-only /uspace/v1/status/hosts/$HOST/containers/$CID/interfaces/net1 | grep -q '\"ready\":true'"
note "the container's memif is up: status written by the container agent"

step "a vhost-user block volume through the Docker volume plugin protocol"
start "uspace-volume" volume "$BIN/uspace-volume" -name uspace-demo -plugin-dir "$WORK/plugins" -path "$WORK/host/vhost" -host "$HOST"
wait_for "volume plugin socket" 10 test -S "$WORK/plugins/uspace-demo.sock"
plugin() { curl -sS --unix-socket "$WORK/plugins/uspace-demo.sock" -H 'Content-Type: application/vnd.docker.plugins.v1.2+json' -d "$2" "http://plugin/VolumeDriver.$1"; echo; }
note "Create: $(plugin Create '{"Name":"volume0","Opts":{"device":"vhostblk0","type":"blk","size":"64MiB"}}')"
note "Mount:  $(plugin Mount '{"Name":"volume0","ID":"demo-mount"}')"
note "device node: $(ls -l "$WORK/host/vhost/block/devices/vhostblk0")"

step "desired vs observed (uspacectl)"
for r in hosts interfaces containers volumes; do
	echo "--- $r"
	"$BIN/uspacectl" get "$r"
done

step "the raw keys (etcdctl get --prefix /uspace/v1/ --keys-only)"
"$BIN/etcdctl" get --prefix /uspace/v1/ --keys-only | sed '/^$/d; s/^/    /'

note "Unmount: $(plugin Unmount '{"Name":"volume0","ID":"demo-mount"}')"
note "Remove:  $(plugin Remove '{"Name":"volume0"}')"
