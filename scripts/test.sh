#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite through ctest.
#   scripts/test.sh [--sanitize] [BUILD_DIR]
# --sanitize: the ASan + UBSan build (default directory build-asan).
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=0
build_dir=""
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=1 ;;
    -h|--help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "test.sh: unknown option $arg" >&2; exit 2 ;;
    *) build_dir="$arg" ;;
  esac
done

if [[ $sanitize -eq 1 ]]; then
  build_dir=${build_dir:-build-asan}
  scripts/build.sh --sanitize "$build_dir"
  # Fail on the first report, with a stack trace. Leak detection stays on: libgomp's
  # thread pool does not trip LeakSanitizer; should a third-party library (HDF5, OpenBLAS)
  # ever do so, suppress that library in a suppressions file rather than turning leak
  # detection off for our own code.
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
else
  build_dir=${build_dir:-build}
  scripts/build.sh "$build_dir"
fi

ctest --test-dir "$build_dir" --output-on-failure -j2
