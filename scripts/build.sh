#!/usr/bin/env bash
# Installs what is missing, configures and builds ringscan.
#   scripts/build.sh [--sanitize] [BUILD_DIR]
# Default BUILD_DIR: build (Release), or build-asan with --sanitize (ASan + UBSan,
# RelWithDebInfo, CPU only, no benchmarks). Extra CMake arguments can be passed in
# RINGSCAN_CMAKE_ARGS, e.g. RINGSCAN_CMAKE_ARGS="-DRINGSCAN_CUDA=OFF".
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=0
build_dir=""
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=1 ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "build.sh: unknown option $arg" >&2; exit 2 ;;
    *)
      if [[ -n "$build_dir" ]]; then echo "build.sh: more than one build directory" >&2; exit 2; fi
      build_dir="$arg" ;;
  esac
done

scripts/install-deps.sh

if [[ $sanitize -eq 1 ]]; then
  build_dir=${build_dir:-build-asan}
  config=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRINGSCAN_SANITIZE=ON
          -DRINGSCAN_CUDA=OFF -DRINGSCAN_BUILD_BENCHMARKS=OFF)
else
  build_dir=${build_dir:-build}
  config=(-DCMAKE_BUILD_TYPE=Release)
  # The Python module and its tests build against this build, with nanobind from PyPI.
  if python=$(scripts/python-env.sh "$build_dir/python-env"); then
    config+=(-DPython_EXECUTABLE="$python")
  else
    echo "build.sh: no Python environment for the Python module (see above); building without it" >&2
  fi
fi

# shellcheck disable=SC2206  # word splitting of the extra arguments is intended
extra=(${RINGSCAN_CMAKE_ARGS:-})
cmake -S . -B "$build_dir" "${config[@]}" "${extra[@]}"
cmake --build "$build_dir" -j"$(nproc)"
echo "build.sh: built $build_dir/ringscan"
