#!/usr/bin/env bash
# build.sh: uspace's container images, each FROM scratch (or FROM a VPP
# image) holding only static binaries. `make images` runs it.
#
#   deployments/images/build.sh [IMAGE...]     (default: all, in this order)
#
#   etcd           etcd + etcdctl (deployments/compose/)
#   host-agent     uspace-agent host (the Kubernetes DaemonSet)
#   cni-installer  installs `userspace` and /etc/uspace/uspace.conf (its init container)
#   vppsim         a stand-in VPP image: uspace-vppsim
#   vpp            the VPP installed here (VPP_DIR, default /opt/vpp-25.02)
#                  with the libraries it loads, FROM scratch
#   vpp-container  VPP + uspace-agent container (replaces vpp-centos-userspace-cni);
#                  FROM $VPP_IMAGE, by default the vppsim stand-in built here
#   host-sim       host-agent + vppsim + spdksim (deployments/compose/ hosts)
#
# Environment: BIN (static binaries, default <repo>/bin, as `make build tools`
# leaves them), PREFIX (default "uspace/"), TAG (default "latest"), VPP_IMAGE,
# GO (default go), VPP_DIR, VPP_PLUGINS (default "memif vhost ping"). Images
# are named $PREFIX<image>:$TAG.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BIN=${BIN:-$root/bin}
PREFIX=${PREFIX:-uspace/}
TAG=${TAG:-latest}
GO=${GO:-go}

images=("$@")
[ ${#images[@]} -gt 0 ] || images=(etcd host-agent cni-installer vppsim vpp-container host-sim)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The two small programs that live here are built on demand.
built=()
gobuild() { # name package
	local b
	for b in "${built[@]}"; do [ "$b" = "$1" ] && return 0; done
	(cd "$root" && CGO_ENABLED=0 "$GO" build -trimpath -o "$work/bin/$1" "$2")
	built+=("$1")
}

# vpp_rootfs DIR: VPP_DIR's vpp, vppctl and VPP_PLUGINS at their installed
# paths, every library ldd says they load, without debug info, /usr/bin
# links and startup.conf.
vpp_rootfs() {
	local root=$1 vpp=${VPP_DIR:-/opt/vpp-25.02} f lib
	if [ ! -x "$vpp/bin/vpp" ]; then
		echo "build.sh: no VPP at $vpp/bin/vpp: set VPP_DIR (make dataplanes installs /opt/vpp-25.02)" >&2
		exit 1
	fi
	local files=("$vpp/bin/vpp" "$vpp/bin/vppctl")
	for f in ${VPP_PLUGINS:-memif vhost ping}; do
		files+=("$vpp/lib/x86_64-linux-gnu/vpp_plugins/${f}_plugin.so")
	done
	for f in "${files[@]}"; do
		cp --parents "$f" "$root"
		for lib in $(ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
			[ -e "$root$lib" ] || cp -L --parents "$lib" "$root"
		done
	done
	# The installed build keeps its debug info (libvnet alone is ~95 MB).
	if command -v strip >/dev/null; then
		find "$root" -type f -name '*.so*' -exec strip --strip-debug {} +
		strip --strip-debug "$root$vpp/bin/vpp" "$root$vpp/bin/vppctl"
	fi
	mkdir -p "$root/usr/bin" "$root/etc/vpp"
	ln -s "$vpp/bin/vpp" "$root/usr/bin/vpp"
	ln -s "$vpp/bin/vppctl" "$root/usr/bin/vppctl"
	cp "$here/vpp/startup.conf" "$root/etc/vpp/"
}

# image NAME FILES... [-- BUILD-ARGS...]: a context with the Dockerfile and
# only the binaries the image needs.
image() {
	local name=$1 ctx=$work/ctx/$1 f
	shift
	mkdir -p "$ctx"
	cp "$here/$name/Dockerfile" "$ctx/"
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		f=$1
		shift
		if [ -e "$work/bin/$f" ]; then
			cp "$work/bin/$f" "$ctx/"
		elif [ -e "$BIN/$f" ]; then
			cp -L "$BIN/$f" "$ctx/"
		else
			echo "build.sh: $BIN/$f missing: run 'make build tools' first (make images does)" >&2
			exit 1
		fi
		# FROM scratch has no dynamic loader: a dynamic binary would fail
		# with a puzzling "no such file or directory" at run time.
		if command -v readelf >/dev/null && readelf -l "$ctx/$f" | grep -q 'program interpreter'; then
			echo "build.sh: $BIN/$f is dynamically linked: build it with CGO_ENABLED=0 (make build does)" >&2
			exit 1
		fi
	done
	[ "${1:-}" = -- ] && shift
	echo "==> ${PREFIX}${name}:${TAG}"
	docker build --quiet --tag "${PREFIX}${name}:${TAG}" "$@" "$ctx"
}

for img in "${images[@]}"; do
	case $img in
	etcd) image etcd etcd etcdctl ;;
	host-agent) image host-agent uspace-agent ;;
	cni-installer)
		gobuild uspace-cni-installer ./deployments/images/cni-installer
		image cni-installer userspace uspace-cni-installer
		;;
	vppsim) image vppsim uspace-vppsim ;;
	vpp)
		mkdir -p "$work/ctx/vpp/rootfs"
		vpp_rootfs "$work/ctx/vpp/rootfs"
		image vpp
		;;
	vpp-container)
		gobuild uspace-start ./deployments/images/uspace-start
		image vpp-container uspace-agent uspace-start -- --build-arg "VPP_IMAGE=${VPP_IMAGE:-${PREFIX}vppsim:${TAG}}"
		;;
	host-sim)
		gobuild uspace-start ./deployments/images/uspace-start
		image host-sim uspace-vppsim uspace-spdksim uspace-start -- --build-arg "HOST_AGENT_IMAGE=${PREFIX}host-agent:${TAG}"
		;;
	*)
		echo "build.sh: unknown image '$img'" >&2
		exit 2
		;;
	esac
done
