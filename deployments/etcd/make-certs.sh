#!/usr/bin/env bash
# make-certs.sh: a CA and the certificates etcd and uspace need for TLS with
# client-certificate auth, made with openssl. For tests and first installs;
# a site with its own PKI issues the same certificates from it.
#
#   make-certs.sh DIR [CLIENT_CN...]
#
# Writes into DIR (created 0700; keys are 0600):
#   ca.pem, ca-key.pem              the CA (kept when DIR already has one,
#                                   so certificates can be added later)
#   server.pem, server-key.pem      etcd's server certificate: SAN 127.0.0.1,
#                                   localhost and $SERVER_SANS
#   <cn>.pem, <cn>-key.pem          a client certificate per CLIENT_CN
#                                   (default: root uspace-admin)
#   jwt-key.pem, jwt-pub.pem        an RSA key pair for etcd --auth-token jwt
#
# etcd with --client-cert-auth logs a client in as the user named by its
# certificate's Common Name (unless it logs in with a password), so issue
# client certificates with CN = the etcd user: root, uspace-admin,
# uspace-host-<host>, uspace-containers-<host>.
#
# Environment: DAYS (leaf validity, default 365), CA_DAYS (default 3650),
# SERVER_SANS (extra subjectAltName entries, e.g. "DNS:etcd1,IP:10.0.0.5"),
# FORCE=1 to re-issue leaf certificates that exist already.
set -euo pipefail

usage() { echo "usage: $0 DIR [CLIENT_CN...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
command -v openssl >/dev/null || { echo "$0: openssl not found" >&2; exit 1; }

dir=$1; shift
clients=("$@")
[ ${#clients[@]} -gt 0 ] || clients=(root uspace-admin)
days=${DAYS:-365}
ca_days=${CA_DAYS:-3650}
sans="IP:127.0.0.1,DNS:localhost${SERVER_SANS:+,$SERVER_SANS}"

umask 077
mkdir -p "$dir"
cd "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

if [ -f ca.pem ] && [ -f ca-key.pem ]; then
	echo "using the CA in $dir/ca.pem"
else
	openssl req -x509 "${newkey[@]}" -keyout ca-key.pem -out ca.pem -days "$ca_days" \
		-subj "/CN=uspace etcd CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	chmod 644 ca.pem
	echo "made CA $dir/ca.pem"
fi

# issue NAME CN EXTENSIONS: NAME.pem and NAME-key.pem signed by the CA.
issue() {
	local name=$1 cn=$2 ext=$3
	if [ -f "$name.pem" ] && [ -f "$name-key.pem" ] && [ "${FORCE:-0}" != 1 ]; then
		echo "kept $dir/$name.pem (FORCE=1 re-issues)"
		return
	fi
	printf '%b\n' "$ext" >"$tmp/ext"
	openssl req -new "${newkey[@]}" -keyout "$name-key.pem" -out "$tmp/csr" -subj "/CN=$cn" 2>/dev/null
	openssl x509 -req -in "$tmp/csr" -CA ca.pem -CAkey ca-key.pem -set_serial "0x$(openssl rand -hex 16)" \
		-days "$days" -extfile "$tmp/ext" -out "$name.pem" 2>/dev/null
	chmod 600 "$name-key.pem"
	chmod 644 "$name.pem"
	echo "issued $dir/$name.pem (CN=$cn)"
}

# etcd's gRPC gateway dials etcd itself with the server certificate, so it
# needs clientAuth too.
issue server "uspace etcd server" "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=$sans"
for cn in "${clients[@]}"; do
	case $cn in
	*/* | .* | "") echo "$0: bad client name '$cn'" >&2; exit 2 ;;
	esac
	issue "$cn" "$cn" "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth"
done

if [ ! -f jwt-key.pem ]; then
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out jwt-key.pem 2>/dev/null
	openssl pkey -in jwt-key.pem -pubout -out jwt-pub.pem
	chmod 644 jwt-pub.pem
	echo "made JWT signing keys $dir/jwt-key.pem, $dir/jwt-pub.pem"
fi
