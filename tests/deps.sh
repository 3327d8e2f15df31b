#!/bin/sh
# Installs the Debian packages evograd builds, tests and runs with.
# Idempotent: does nothing when every package is already installed.
set -e
PKGS="gcc make pkg-config libopenblas-dev libopenblas-openmp-dev libdnnl-dev
      zlib1g-dev libcmocka-dev
      libjansson-dev libmicrohttpd-dev libsqlite3-dev libcurl4-openssl-dev
      libsystemd-dev systemd python3 python3-numpy python3-torch python3-jsonschema
      dataset-fashion-mnist prometheus clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends $missing
