#!/usr/bin/env bash
# uspace demo: the whole flow on one machine. With the real VPP and SPDK that
# `make dataplanes` installs (or USPACE_VPP_BIN / USPACE_SPDK_BIN, or vpp and
# spdk_tgt on PATH) it runs them: a host VPP, a spdk_tgt, and one VPP inside
# each of two containers' network namespaces, and ends with a ping from one
# container's VPP to the other's through the host VPP's bridge domain.
# Without them (or with USPACE_DEMO_DATAPLANES=sim) it runs the wire-level
# simulators (uspace-vppsim, uspace-spdksim), which carry no frames: no ping.
# etcd runs embedded with the host agent (--embedded-etcd: the agent's child
# $BIN/uspace-etcd, found beside it), the default single-host set-up.
set -euo pipefail

BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin}
HOST=demo-host
CIDS=(demo-a-$(printf '%04x' $$) demo-b-$(printf '%04x' $$))
NETNSES=(uspace-demo-a-$$ uspace-demo-b-$$)
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
		for i in $(seq 0 $((ADDED - 1))); do cni DEL "$i" >/dev/null && note "deleted ${CIDS[$i]}"; done
	fi
	# jobs -p also names a process started just as Ctrl-C came, before
	# its pid reached PIDS.
	for pid in "${PIDS[@]}" $(jobs -p); do kill "$pid" 2>/dev/null; done
	wait 2>/dev/null
	for ns in "${NETNSES[@]}"; do ip netns del "$ns" 2>/dev/null; done
	rm -f /dev/shm/uspace-demo-$$-* /dev/shm/spdk_tgt_trace.pid"${SPDK_PID:-none}"
	rm -rf "$WORK"
	printf '\ncleaned up: processes stopped, namespaces %s and %s removed\n' "${NETNSES[*]}" "$WORK"
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

cni() { # command, container index: the way a runtime calls a CNI plugin, env + config on stdin
	CNI_COMMAND=$1 CNI_CONTAINERID=${CIDS[$2]} CNI_NETNS=/var/run/netns/${NETNSES[$2]} CNI_IFNAME=net1 \
		CNI_PATH=$BIN CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=demo-pod" \
		"$BIN/userspace" <"$WORK/net.conf"
}

for b in etcdctl uspace-agent uspace-etcd uspace-vppsim uspace-spdksim userspace uspace-volume uspacectl host-local; do
	[ -x "$BIN/$b" ] || { echo "missing $BIN/$b: run 'make build tools' (make demo does)" >&2; exit 1; }
done

find_bin() { # env override, name on PATH, install location
	local p=${!1:-}
	[ -n "$p" ] || p=$(command -v "$2" 2>/dev/null) || p=$3
	[ -x "$p" ] && echo "$p"
}
VPP_BIN=$(find_bin USPACE_VPP_BIN vpp /opt/vpp-25.02/bin/vpp || true)
SPDK_BIN=$(find_bin USPACE_SPDK_BIN spdk_tgt /opt/uspace-dp/spdk-24.09/bin/spdk_tgt || true)
REAL=
if [ "${USPACE_DEMO_DATAPLANES:-auto}" != sim ] && [ -n "$VPP_BIN" ] && [ -n "$SPDK_BIN" ]; then REAL=1; fi

# start_vpp name dir [netns]: a real VPP without hugepages (the flags of
# ../shared/dataplanes/README.md), its API socket at dir/api.sock.
start_vpp() {
	local name=$1 dir=$2 ns=${3:-}
	mkdir -p "$dir"
	cat >"$dir/startup.conf" <<CONF
unix { nodaemon nosyslog runtime-dir $dir cli-listen $dir/cli.sock log $dir/vpp.log cli-no-pager poll-sleep-usec 100 }
api-segment { prefix uspace-demo-$$-$name }
socksvr { socket-name $dir/api.sock }
statseg { socket-name $dir/stats.sock size 32m page-size 4k }
memory { main-heap-size 256M main-heap-page-size 4k }
buffers { buffers-per-numa 16384 page-size 4k }
plugins { path $(dirname "$VPP_BIN")/../lib/x86_64-linux-gnu/vpp_plugins plugin default { disable }
  plugin memif_plugin.so { enable } plugin vhost_plugin.so { enable } plugin ping_plugin.so { enable } }
CONF
	if [ -n "$ns" ]; then
		start "$name VPP (real, in netns $ns)" "vpp-$name" ip netns exec "$ns" "$VPP_BIN" -c "$dir/startup.conf"
	else
		start "$name VPP (real)" "vpp-$name" "$VPP_BIN" -c "$dir/startup.conf"
	fi
	wait_for "$name VPP CLI" 60 "$(dirname "$VPP_BIN")/vppctl" -s "$dir/cli.sock" show version
}
vppctl() { "$(dirname "$VPP_BIN")/vppctl" -s "$1/cli.sock" "${@:2}"; }

mkdir -p "$WORK/host/vhost/block/sockets"
if [ -n "$REAL" ]; then
	step "dataplanes: REAL VPP and SPDK ($VPP_BIN, $SPDK_BIN)"
	start_vpp host "$WORK/host/vpp"
	note "$(vppctl "$WORK/host/vpp" show version)"
	start "SPDK (real spdk_tgt)" spdk "$SPDK_BIN" --no-huge -s 2048 -m 0x1 --disable-cpumask-locks \
		-S "$WORK/host/vhost/block/sockets" -r "$WORK/host/spdk.sock"
	SPDK_PID=${PIDS[-1]}
	wait_for "SPDK socket" 60 test -S "$WORK/host/spdk.sock"
else
	step "dataplanes: VPP and SPDK are SIMULATED (wire-level: GoVPP binary API socket, SPDK JSON-RPC)"
	note "no real VPP/SPDK found (make dataplanes installs them), or USPACE_DEMO_DATAPLANES=sim"
	start "host VPP (uspace-vppsim)" vppsim "$BIN/uspace-vppsim" --socket "$WORK/host/vpp/api.sock" --runtime-dir "$WORK/host/vpp"
	start "SPDK (uspace-spdksim)" spdksim "$BIN/uspace-spdksim" -r "$WORK/host/spdk.sock" -S "$WORK/host/vhost/block/sockets"
	wait_for "VPP socket" 10 test -S "$WORK/host/vpp/api.sock"
	wait_for "SPDK socket" 10 test -S "$WORK/host/spdk.sock"
fi

step "host agent for $HOST with an embedded single-member etcd on $ETCD (data in $WORK/etcd)"
note "the agent watches /uspace/v1/hosts/$HOST/; etcdctl below is the real one"
start "uspace-agent host --embedded-etcd" host-agent "$BIN/uspace-agent" host --host "$HOST" \
	--embedded-etcd "$WORK/etcd" --etcd-endpoints "$ETCD" --embedded-etcd-peer-url "$PEER" \
	--vpp-socket "$WORK/host/vpp/api.sock" --spdk-socket "$WORK/host/spdk.sock" \
	--shared-dir "$WORK/shared" --volume-root "$WORK/host/vhost" --state-dir "$WORK/state" --metrics-addr 127.0.0.1:0
wait_for "etcd" 30 "$BIN/etcdctl" endpoint health
wait_for "host agent registration" 30 sh -c "'$BIN/etcdctl' get --print-value-only /uspace/v1/hosts/$HOST/agent | grep -q Agent"
note "registered: $("$BIN/etcdctl" get --print-value-only /uspace/v1/hosts/$HOST/agent)"

step "network namespaces ${NETNSES[*]} and a real CNI ADD into each through the 'userspace' plugin"
cat >"$WORK/net.conf" <<CONF
{
  "cniVersion": "1.0.0", "type": "userspace", "name": "memif-network",
  "host": {"engine": "vpp", "iftype": "memif", "netType": "bridge",
           "memif": {"role": "master", "mode": "ethernet"}, "bridge": {"bridgeName": "4"}},
  "container": {"engine": "vpp", "iftype": "memif", "netType": "interface",
                "memif": {"role": "slave", "mode": "ethernet"}},
  "ipam": {"type": "host-local", "subnet": "10.56.217.0/24", "dataDir": "$WORK/ipam"},
  "sharedDir": "$WORK/shared",
  "uspace": {"etcd": {"endpoints": ["$ETCD"]}, "host": "$HOST", "addTimeout": "20s"}
}
CONF
note "config: the upstream userspace CNI format plus a 'uspace' section"
IPS=()
for i in 0 1; do
	ip netns add "${NETNSES[$i]}"
	cni ADD "$i" >"$WORK/add-result-$i.json"
	ADDED=$((i + 1))
	IPS+=("$(sed -n 's/.*"address": *"\([0-9.]*\)\/.*/\1/p' "$WORK/add-result-$i.json" | head -1)")
	note "CNI result for ${CIDS[$i]} (IP ${IPS[$i]}):"
	sed 's/^/      /' "$WORK/add-result-$i.json"
done

for i in 0 1; do
	step "container agent of ${CIDS[$i]} with the container's own VPP"
	dir=$WORK/ctr$i
	if [ -n "$REAL" ]; then
		start_vpp "ctr$i" "$dir" "${NETNSES[$i]}"
	else
		start "container VPP (uspace-vppsim)" "ctr$i-vppsim" "$BIN/uspace-vppsim" --socket "$dir/api.sock" --runtime-dir "$dir"
		wait_for "container VPP socket" 10 test -S "$dir/api.sock"
	fi
	start "uspace-agent container" "ctr$i-agent" "$BIN/uspace-agent" container --host "$HOST" --container-id "${CIDS[$i]}" \
		--vpp-socket "$dir/api.sock" --shared-dir "$WORK/shared"
	wait_for "container agent status" 60 sh -c "'$BIN/etcdctl' get --print-value-only /uspace/v1/status/hosts/$HOST/containers/${CIDS[$i]}/interfaces/net1 | grep -q '\"ready\":true'"
	note "the container's memif is up: status written by the container agent"
done

if [ -n "$REAL" ]; then
	step "ping from ${CIDS[0]}'s VPP to ${CIDS[1]}'s (${IPS[1]}) through the host VPP's bridge domain 4"
	deadline=$((SECONDS + 45))
	until out=$(vppctl "$WORK/ctr0" ping "${IPS[1]}" repeat 3 interval 0.2) && echo "$out" | grep -Eq '[1-9][0-9]* received'; do
		[ $SECONDS -lt $deadline ] || { echo "no ping reply: $out" >&2; exit 1; }
	done
	echo "$out" | sed 's/^/    /'
	note "host VPP: $(vppctl "$WORK/host/vpp" show bridge-domain 4 | tail -1 | sed 's/  */ /g')"
else
	note "simulated VPPs carry no frames: no ping (install the real ones: make dataplanes)"
fi

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
