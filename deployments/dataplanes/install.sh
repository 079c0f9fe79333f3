#!/usr/bin/env bash
# Installs the real VPP 25.02 and SPDK 24.09 (prebuilt releases, see
# ../shared/dataplanes/README.md) where integration/realdp and the demo find
# them: /opt/vpp-25.02 and /opt/uspace-dp/spdk-24.09, plus the Debian
# run-time packages they link. Idempotent; downloads nothing but Debian
# packages. A user's own vpp / spdk_tgt (USPACE_VPP_BIN, USPACE_SPDK_BIN or
# PATH) is left as it is and nothing is installed for it.
set -euo pipefail
dir=${USPACE_DATAPLANES_DIR:-}
VPP_DEBS=${VPP_DEBS:-libunwind8 libssl3}
SPDK_DEBS=${SPDK_DEBS:-}

have() { [ -n "${!1:-}" ] || command -v "$2" >/dev/null 2>&1; }
missing_debs() {
	local m=()
	for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || m+=("$p"); done
	echo "${m[@]:-}"
}
apt_install() {
	local m
	m=$(missing_debs "$@")
	[ -z "$m" ] && return 0
	echo "dataplanes: installing Debian packages: $m"
	apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $m >/dev/null
}
unpack() { # archive destdir
	command -v zstd >/dev/null || apt_install zstd
	mkdir -p "$2"
	tar -C "$2" --zstd -xf "$1"
}

if have USPACE_VPP_BIN vpp; then
	echo "dataplanes: VPP: using ${USPACE_VPP_BIN:-$(command -v vpp)}"
elif [ -x /opt/vpp-25.02/bin/vpp ]; then
	apt_install $VPP_DEBS
	echo "dataplanes: VPP: /opt/vpp-25.02 (installed)"
elif [ -f "$dir/vpp-25.02-x86_64.tar.zst" ]; then
	apt_install $VPP_DEBS
	unpack "$dir/vpp-25.02-x86_64.tar.zst" /
	echo "dataplanes: VPP: installed /opt/vpp-25.02 from $dir"
else
	echo "dataplanes: VPP: none (no vpp on PATH, no USPACE_VPP_BIN, no $dir/vpp-25.02-x86_64.tar.zst): the real-dataplane tests will skip"
fi

if have USPACE_SPDK_BIN spdk_tgt; then
	echo "dataplanes: SPDK: using ${USPACE_SPDK_BIN:-$(command -v spdk_tgt)}"
elif [ -x /opt/uspace-dp/spdk-24.09/bin/spdk_tgt ]; then
	apt_install $SPDK_DEBS
	echo "dataplanes: SPDK: /opt/uspace-dp/spdk-24.09 (installed)"
elif [ -f "$dir/spdk-24.09-x86_64.tar.zst" ]; then
	apt_install $SPDK_DEBS
	unpack "$dir/spdk-24.09-x86_64.tar.zst" /opt/uspace-dp
	echo "dataplanes: SPDK: installed /opt/uspace-dp/spdk-24.09 from $dir"
else
	echo "dataplanes: SPDK: none (no spdk_tgt on PATH, no USPACE_SPDK_BIN, no $dir/spdk-24.09-x86_64.tar.zst): the real-dataplane tests will skip"
fi
