#!/usr/bin/env bash
# Installs every Debian package trading-heal needs to build, test and run. The one list of
# dependencies: CMake finds these (cmake/Dependencies.cmake); nothing is downloaded at build time.
# Idempotent and quick when everything is present. Usage: deploy/install-deps.sh [--runtime-only]
set -euo pipefail

build_pkgs=(
  build-essential cmake pkg-config g++ clang-14 libclang-rt-14-dev clang-format-14 clang-tidy-14
  libzmq3-dev cppzmq-dev libpqxx-dev libmsgpack-cxx-dev prometheus-cpp-dev
  libcurl4-openssl-dev libspdlog-dev libfmt-dev libsystemd-dev nlohmann-json3-dev
  libcpp-httplib-dev libboost-dev libexpected-dev libssl-dev libgtest-dev libgmock-dev libbenchmark-dev
)
run_pkgs=(
  systemd dbus postgresql postgresql-client prometheus prometheus-alertmanager
  curl jq procps iproute2 sudo polkitd
)
# The system-mode testbed (tests/sysbed): a container booted from a debootstrap rootfs, ssh into it.
test_pkgs=(systemd-container debootstrap openssh-client)

pkgs=("${run_pkgs[@]}")
[[ "${1:-}" == "--runtime-only" ]] || pkgs+=("${build_pkgs[@]}" "${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) != "install ok installed" ]]; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#pkgs[@]} packages present" >&2
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing ${missing[*]}; run as root (or with sudo) to install them" >&2
  exit 1
fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Package scripts must not try to start services on a machine where systemd is not PID 1.
policy_created=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  policy_created=1
fi
trap '[[ $policy_created == 1 ]] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done" >&2
