#!/usr/bin/env bash
# Installs the Debian packages ringscan needs to build and test, and only those missing.
# Idempotent: when everything is present it changes nothing and needs no network or root.
set -euo pipefail

packages=(
  build-essential cmake
  libhdf5-dev hdf5-tools
  libfaiss-dev libopenblas-dev
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-dev llvm  # the libFuzzer target (llvm: llvm-symbolizer for its reports)
  python3 python3-dev python3-venv  # the Python package (its build tools come from PyPI)
  openmpi-bin libopenmpi-dev  # distributed detection under mpirun (RINGSCAN_MPI)
  chromium  # the report's test in a headless browser
)

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: this script needs a Debian-based system (dpkg-query, apt-get)." >&2
  echo "install-deps: install these by other means: ${packages[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
  # "install ok installed" only: a package that was removed but left its configuration
  # ("deinstall ok config-files") is not installed.
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: missing packages (${missing[*]}) and not root, and sudo is not available" >&2
    exit 1
  fi
  sudo_cmd=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"
