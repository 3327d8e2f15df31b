#!/bin/sh
# Installs the Debian packages evograd builds, tests and runs with (the
# PostgreSQL server for the shared store's tests among them), and the
# web page's npm packages (daemon/ui: uPlot, and playwright-core for the
# browser test), pinned by daemon/ui/package-lock.json.
# Idempotent: does nothing when everything is already installed.
set -e
PKGS="gcc g++ make pkg-config libopenblas-dev libopenblas-openmp-dev libdnnl-dev
      zlib1g-dev libcmocka-dev
      libjansson-dev libmicrohttpd-dev libsqlite3-dev libcurl4-openssl-dev
      libsystemd-dev systemd python3 python3-numpy python3-torch python3-jsonschema
      dataset-fashion-mnist prometheus clang libclang-rt-14-dev chromium
      libpq-dev postgresql libjpeg62-turbo-dev libpng-dev
      libsentencepiece-dev python3-sentencepiece"
# Node.js and npm from Debian unless the machine has its own.
command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends $missing
fi
ui=$(dirname "$0")/../daemon/ui
if ! cmp -s "$ui/package-lock.json" "$ui/node_modules/.evograd-lock.json" 2>/dev/null; then
    (cd "$ui" && npm ci --no-audit --no-fund && cp package-lock.json node_modules/.evograd-lock.json)
fi
