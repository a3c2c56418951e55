#!/usr/bin/env bash
# Installs the Debian packages frugal needs to build, test and benchmark. Idempotent: does nothing when
# everything is already there. Run as root (or with sudo available).
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
      libgtest-dev libgmock-dev libbenchmark-dev libpcre2-dev libcli11-dev nlohmann-json3-dev libcpp-httplib-dev libsqlite3-dev
      python3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm are only needed by the llama.cpp comparison scripts; nodesource builds ship npm inside nodejs.
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
