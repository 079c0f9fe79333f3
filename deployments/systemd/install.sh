#!/usr/bin/env bash
# install.sh: uspace on a host run by systemd. Installs
#   /usr/local/bin/uspace-agent, /usr/local/bin/uspace-volume
#   /usr/local/bin/uspace-etcd   the agent's child with USPACE_EMBEDDED_ETCD
#   /opt/cni/bin/userspace                                  the CNI plugin
#   /etc/systemd/system/uspace-agent.service (+ .d/devices.conf), uspace-volume.service
#   /etc/uspace/uspace.env   (0600)   settings of both daemons    } kept when
#   /etc/uspace/uspace.conf  (0644)   the CNI plugin's defaults   } present
# then reloads systemd. Edit the two settings files (etcd endpoints and
# credentials, USPACE_HOST), then: systemctl enable --now uspace-agent uspace-volume
#
#   BIN=bin deployments/systemd/install.sh
#
# BIN: the static binaries (default <repo>/bin, from `make build`).
# DESTDIR: install under this root instead of / (packaging, tests); systemd
# is then not reloaded.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$(cd "$here/../.." && pwd)/bin}
DESTDIR=${DESTDIR:-}

for b in uspace-agent uspace-etcd uspace-volume userspace; do
	[ -x "$BIN/$b" ] || { echo "install.sh: $BIN/$b missing: run 'make build' first" >&2; exit 1; }
done

install -d -m 0755 "$DESTDIR/usr/local/bin" "$DESTDIR/opt/cni/bin" \
	"$DESTDIR/etc/systemd/system/uspace-agent.service.d"
install -d -m 0700 "$DESTDIR/etc/uspace" "$DESTDIR/etc/uspace/etcd"
install -m 0755 "$BIN/uspace-agent" "$BIN/uspace-etcd" "$BIN/uspace-volume" "$DESTDIR/usr/local/bin/"
install -m 0755 "$BIN/userspace" "$DESTDIR/opt/cni/bin/"
install -m 0644 "$here/uspace-agent.service" "$here/uspace-volume.service" "$DESTDIR/etc/systemd/system/"
install -m 0644 "$here/uspace-agent.service.d/devices.conf" "$DESTDIR/etc/systemd/system/uspace-agent.service.d/"
# Settings are the site's: never overwritten.
[ -e "$DESTDIR/etc/uspace/uspace.env" ] || install -m 0600 "$here/uspace.env" "$DESTDIR/etc/uspace/uspace.env"
[ -e "$DESTDIR/etc/uspace/uspace.conf" ] || install -m 0644 "$here/uspace.conf" "$DESTDIR/etc/uspace/uspace.conf"

if [ -z "$DESTDIR" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
	systemctl daemon-reload
fi
echo "installed; edit /etc/uspace/uspace.env and /etc/uspace/uspace.conf, put the etcd credentials in /etc/uspace/etcd/,"
echo "then: systemctl enable --now uspace-agent uspace-volume"
