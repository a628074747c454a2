#!/usr/bin/env bash
# Installs the Debian packages mlgate's tests and code generation need, if any
# are missing: protoc and grpc_python_plugin (buf calls them), python3-grpcio
# and python3-protobuf (the Python client and its tests), docker-compose (to
# check docker-compose.yml offline). Needs root to install;
# otherwise it names what is missing and fails.
set -euo pipefail
packages=(protobuf-compiler protobuf-compiler-grpc python3-grpcio python3-protobuf docker-compose git curl)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "missing Debian packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi
echo "installing Debian packages: ${missing[*]}"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
