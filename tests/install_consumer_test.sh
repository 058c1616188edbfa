#!/usr/bin/env bash
# Installs the build into a fresh prefix and builds and runs examples/consumer against it,
# with the shared and with the static library: find_package(ringscan) and the public headers
# are all a user's project needs.
#   tests/install_consumer_test.sh BUILD_DIR SOURCE_DIR WORK_DIR
set -euo pipefail
build=$1 source=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
# Only the public headers are installed.
for internal in backend.hpp sizes.hpp fault_injection.hpp ring_scoring.hpp; do
  if [[ -e "$work/prefix/include/ringscan/$internal" ]]; then
    echo "install_consumer_test: internal header $internal was installed" >&2
    exit 1
  fi
done
for mode in OFF ON; do
  cmake -S "$source/examples/consumer" -B "$work/consumer-$mode" -DCMAKE_PREFIX_PATH="$work/prefix" \
    -DRINGSCAN_STATIC=$mode -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$work/consumer-$mode" -j2 >/dev/null
  echo "static=$mode: $("$work/consumer-$mode/count_rings")"
done
