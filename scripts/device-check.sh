#!/usr/bin/env bash
# The GPU checks of issue 3 as one call of the device tool. The H200 machine has CUDA, CMake
# and a compiler but no Debian packages and no registry, so the packages travel as .deb files:
#   here:    scripts/fetch-device-debs.sh            (fills .debs/, ignored by git)
#   device:  run(command="scripts/device-check.sh", carry=[".debs"], timeout_s=600)
# Steps, each with its own time limit so that one slow step cannot eat the others', in the
# order of what the issue needs most, so that a call cut at its 10 minutes loses only the last:
#   1. unpack .debs into a private prefix; build (Release, sm_90) with the CUDA backend;
#   2. the whole test suite (the CUDA tests run there instead of skipping);
#   3. speedup: CPU backend (all cores) against CUDA on 100k accounts, 1M requests, D=256
#      (target 20x);
#   4. the large file: 1M accounts, 10M requests, D=256 stored as float16, end to end
#      (target under 30 s);
#   5. compute-sanitizer memcheck over the CUDA tests;
#   6. stage benchmarks of the CUDA variants (achieved FLOP/s of the exact request join);
#      every detect above also reports its stage seconds and its joins' achieved FLOP/s.
# The figures and the targets' verdicts come from scripts/device_report.py.
# Figures go to $OUT/device-check.md (or build-device/out/ outside the device tool), step by
# step, so that what a cut call leaves there still comes back.
#   scripts/device-check.sh [--skip-large | --large-only]
# --skip-large: all but step 4; --large-only: steps 1 and 4, for a second call on the
# still-warm machine, whose build-device/ is kept (the build is then a no-op).
set -uo pipefail
cd "$(dirname "$0")/.."
skip_large=0
large_only=0
case "${1:-}" in
  --skip-large) skip_large=1 ;;
  --large-only) large_only=1 ;;
  "") ;;
  *) echo "device-check.sh: unknown option $1" >&2; exit 2 ;;
esac

out=${OUT:-build-device/out}
mkdir -p "$out"
report="$out/device-check.md"
: >"$report"
say() { echo "$*" | tee -a "$report"; }
started=$(date +%s)
elapsed() { echo $(( $(date +%s) - started )); }
# step NAME LIMIT_SECONDS COMMAND...: runs with a time limit, logs to $out/NAME.log.
step() {
  local name=$1 limit=$2
  shift 2
  say ""
  say "## $name (limit ${limit}s, at $(elapsed)s)"
  local t0=$(date +%s)
  timeout --signal=KILL "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  say "exit $rc after $(( $(date +%s) - t0 )) s"
  tail -n 25 "$out/$name.log" | tee -a "$report"
  return $rc
}

say "# ringscan device check, $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$report"
nvcc --version | tail -1 | tee -a "$report"

# 1. Packages into a private prefix. Only the libraries the machine lacks go on the search
#    path, so its own (libstdc++, libssl, ...) are never shadowed.
prefix=/tmp/ringscan-prefix
lib=$prefix/usr/lib/x86_64-linux-gnu
if ! ls .debs/*.deb >/dev/null 2>&1; then
  say "no .debs/: run scripts/fetch-device-debs.sh here and carry .debs"
  exit 2
fi
mkdir -p "$prefix/missing"
for f in .debs/*.deb; do dpkg -x "$f" "$prefix"; done
for so in "$lib"/*.so.* "$prefix"/lib/x86_64-linux-gnu/*.so.* "$lib"/openblas-pthread/*.so.*; do
  [[ -e "$so" ]] || continue
  name=$(basename "$so")
  ldconfig -p | grep -q "^[[:space:]]*$name " || ln -sf "$so" "$prefix/missing/$name"
done
export LD_LIBRARY_PATH=$prefix/missing${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# Debian's FAISS package names the BLAS of /usr (an alternatives link): point it at the
# prefix's OpenBLAS, which provides BLAS and LAPACK.
sed -i "s|/usr/lib/x86_64-linux-gnu/libblas.so|$lib/openblas-pthread/libopenblas.so|g; s|/usr/lib/x86_64-linux-gnu/liblapack.so|$lib/openblas-pthread/libopenblas.so|g" \
  "$lib/cmake/faiss/faiss-targets.cmake"
cmake_args=(
  -DCMAKE_BUILD_TYPE=Release -DRINGSCAN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90
  -DCMAKE_PREFIX_PATH="$prefix/usr;$lib/cmake;$lib/openblas-pthread/cmake"
  -DHDF5_C_INCLUDE_DIR="$prefix/usr/include/hdf5/serial"
  -DHDF5_C_LIBRARY_hdf5="$lib/libhdf5_serial.so"
  -DBLAS_LIBRARIES="$lib/openblas-pthread/libopenblas.so"
  -DLAPACK_LIBRARIES="$lib/openblas-pthread/libopenblas.so"
  -DCMAKE_CXX_FLAGS="-isystem $prefix/usr/include -isystem $prefix/usr/include/x86_64-linux-gnu"
  -DCMAKE_CUDA_FLAGS="-isystem $prefix/usr/include"
  -DCMAKE_EXE_LINKER_FLAGS="-L$prefix/missing -Wl,-rpath-link,$prefix/missing"
)
step configure 120 cmake -S . -B build-device "${cmake_args[@]}" || exit 1
step build 300 cmake --build build-device -j"$(nproc)" || exit 1
./build-device/ringscan --version | tee -a "$report"

tests_rc=0
data=/tmp/ringscan-data
mkdir -p "$data"
# summarise REPORT.json [--target SECONDS]: seconds per stage and each device join's
# inner-product rate against the H200's datasheet peak (scripts/device_report.py).
summarise() { python3 scripts/device_report.py stages "$@" 2>&1 | tee -a "$report"; }

# The device machines run in sandboxes (gVisor, Firecracker): should the isolated reader (a
# forked child with shared memory and resource limits) fail there, the detections read in
# process instead, and the report says so, rather than the benchmark being lost.
read_args=()
check_isolation() {
  if ! { build-device/ringscan generate -q -o "$data/tiny.h5" --accounts 300 --dim 16 &&
         build-device/ringscan info "$data/tiny.h5"; } >"$out/isolation-check.log" 2>&1; then
    read_args=(--no-isolation)
    say "isolated reading failed on this machine (below): detections run with --no-isolation"
    tail -n 5 "$out/isolation-check.log" | tee -a "$report"
  fi
}

# 2. The whole suite; the CUDA tests run here.
run_tests() {
  step tests 240 ctest --test-dir build-device --output-on-failure -j8
  tests_rc=$?
}

# 3. Speedup over the CPU backend on all cores: 100k accounts, 1M requests, D=256.
run_speedup() {
  step generate_100k 180 build-device/ringscan generate -q -o "$data/100k.h5" --accounts 100000 \
    --requests-per-account 10 --dim 256 --float16 --seed 303 || return
  for device in cpu cuda; do
    step "detect_100k_$device" 300 build-device/ringscan detect -q "$data/100k.h5" ${read_args[@]+"${read_args[@]}"} \
      -o "$data/100k-$device.h5" --device "$device" --report "$out/100k-$device.json"
    summarise "$out/100k-$device.json"
    build-device/ringscan evaluate "$data/100k-$device.h5" --truth "$data/100k.h5" >"$out/eval-100k-$device.json" 2>&1
    cat "$out/eval-100k-$device.json" >>"$report"
  done
  say ""
  say "## speedup, 100k accounts (target 20x)"
  python3 scripts/device_report.py speedup "$out/100k-cpu.json" "$out/100k-cuda.json" --target 20 2>&1 |
    tee -a "$report"
}

# 4. The large file: 1M accounts, 10M requests, D=256 in float16; the device joins it over a
#    k-means partition (cells of ~8192 rows, 2 probes).
run_large() {
  step generate_1m 300 build-device/ringscan generate -q -o "$data/1m.h5" --accounts 1000000 \
    --requests-per-account 10 --dim 256 --float16 --seed 304 || return
  step detect_1m_cuda 420 build-device/ringscan detect -q "$data/1m.h5" ${read_args[@]+"${read_args[@]}"} \
    -o "$data/1m-cuda.h5" --device cuda --report "$out/1m-cuda.json" || return
  summarise "$out/1m-cuda.json" --target 30
  build-device/ringscan evaluate "$data/1m-cuda.h5" --truth "$data/1m.h5" >"$out/eval-1m-cuda.json" 2>&1
  cat "$out/eval-1m-cuda.json" >>"$report"
}

# 5. memcheck over the CUDA tests (the sanitizer slows kernels down: the small sizes only).
run_memcheck() {
  if command -v compute-sanitizer >/dev/null; then
    step memcheck 240 compute-sanitizer --tool memcheck --error-exitcode 3 \
      build-device/tests/ringscan_tests '--gtest_filter=*Cuda*:-*Sizes/CudaStages.*/2:CudaDetection.*'
  else
    say "compute-sanitizer not found: memcheck not run"
  fi
}

# 6. Stage benchmarks, CUDA variants only (the exact CPU request index at these sizes would
#    take hours; the CPU comparison is step 3).
run_bench() {
  step bench_indices 240 build-device/benchmarks/bench_indices --accounts=10000,40000 --dim=256 \
    --benchmark_filter='/cuda/' --benchmark_min_time=0.1
}

check_isolation
if [[ $large_only -eq 1 ]]; then
  run_large
else
  run_tests
  run_speedup
  [[ $skip_large -eq 1 ]] || run_large
  run_memcheck
  run_bench
fi
say ""
say "total $(elapsed) s; tests exit $tests_rc"
exit "$tests_rc"
