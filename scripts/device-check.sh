#!/usr/bin/env bash
# The GPU checks of issue 3 as one call of the device tool. The H200 machine has CUDA, CMake,
# ninja and a compiler but no Debian packages and no registry, so the packages travel as .deb
# files:
#   here:    scripts/fetch-device-debs.sh            (fills .debs/, ignored by git)
#   device:  run(command="scripts/device-check.sh", carry=[".debs"], timeout_s=480)
# A session has 15 minutes of device time, the machine's start included, and no machine
# starts with under 4 left: one call of about 8 minutes leaves room to rerun once (a failed
# build ends the call at once). The script keeps its own deadline (DEVICE_CHECK_SECONDS,
# default 440 s): each step's limit is cut to the time left, and a step that cannot fit is
# reported as skipped. The exit status is non-zero when any step failed, timed out or was
# skipped; the report's last line lists them. Steps, in the order of what the issue needs
# most:
#   1. unpack .debs into a private prefix; build (Release, sm_90) with the CUDA backend; the
#      two input files are then generated in the background (paused while the CPU backend
#      is timed in step 3);
#   2. the whole test suite (the CUDA tests run there instead of skipping);
#   3. speedup: CPU backend (all cores) against CUDA on 100k accounts, 1M requests, D=256
#      (target 20x);
#   4. the large file: 1M accounts, 10M requests, D=256 stored as float16, end to end
#      (target under 30 s);
#   5. compute-sanitizer over the CUDA tests: memcheck, then racecheck, synccheck and
#      initcheck on the smallest sizes;
#   6. stage benchmarks of the CUDA variants (achieved FLOP/s of the exact request join);
#      every detect above also reports its stage seconds and its joins' achieved FLOP/s.
# The figures and the targets' verdicts come from scripts/device_report.py.
# At most 8 files come back from $OUT, so it holds only: device-check.md (the report, written
# step by step), logs.tgz (every step's full log, repacked after each step) and the three
# detections' JSON reports. Outside the device tool they go to build-device/out/.
#   scripts/device-check.sh [--skip-large | --large-only]
# --skip-large: all but step 4; --large-only: steps 1 and 4 (a warm machine keeps
# build-device/, so the build is then a no-op).
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
[[ -d /usr/local/cuda/bin ]] && export PATH=/usr/local/cuda/bin:$PATH

out=${OUT:-build-device/out}
logs=build-device/logs
rm -rf "$logs"  # a kept build-device/ must not hand an earlier call's markers to this one
mkdir -p "$out" "$logs"
rm -f "$out"/*.json "$out"/logs.tgz  # nor its reports: the speedup must be this call's
report="$out/device-check.md"
: >"$report"
say() { echo "$*" | tee -a "$report"; }
started=$(date +%s)
deadline=${DEVICE_CHECK_SECONDS:-440}
failed=()  # "step:status" of every step that did not succeed
elapsed() { echo $(( $(date +%s) - started )); }
# Every log in one archive: $OUT returns 8 files at most. Packed beside, then copied in.
pack_logs() {
  tar -czf build-device/logs.tgz -C "$logs" . 2>/dev/null
  # 1: a file changed while read (the background generator's log); the archive is still good.
  (( $? <= 1 )) && cp build-device/logs.tgz "$out/logs.tgz"
}
# step NAME LIMIT_SECONDS COMMAND...: runs with a time limit (cut to what is left before the
# deadline; skipped when under 20 s are left), logs to $logs/NAME.log; its last lines go to
# the report, fewer to stdout (the device tool returns 12,000 characters of it). A failure,
# a timeout (exit 124: TERM at the limit, KILL 5 s later) or a skip is added to `failed`.
step() {
  local name=$1 limit=$2
  shift 2
  local left=$(( deadline - $(elapsed) - 10 ))
  say ""
  if (( left < 20 )); then
    say "## $name: skipped, ${left} s left before the ${deadline} s deadline"
    failed+=("$name:skipped")
    return 125
  fi
  (( limit > left )) && limit=$left
  say "## $name (limit ${limit}s, at $(elapsed)s)"
  local t0=$(date +%s)
  timeout --kill-after=5 "$limit" "$@" >"$logs/$name.log" 2>&1
  local rc=$?
  local how="exit $rc"
  (( rc == 124 || rc == 137 )) && how="timed out (exit $rc)"
  say "$how after $(( $(date +%s) - t0 )) s"
  (( rc == 0 )) || failed+=("$name:$rc")
  tail -n 25 "$logs/$name.log" >>"$report"
  tail -n 6 "$logs/$name.log"
  pack_logs
  return $rc
}
# quick COMMAND...: a short probe, killed after 60 s (a wedged driver must not eat the call).
quick() { timeout --kill-after=5 60 "$@"; }

say "# ringscan device check, $(date -u +%FT%TZ)"
quick nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$report"
{ nvcc --version | tail -1; c++ --version | head -1; cmake --version | head -1
  echo "$(nproc) cores; $(grep MemTotal /proc/meminfo)"; } 2>&1 | tee -a "$report"
# The machine's RAM can start small and grow as it is used (H200.md): size the jobs from the
# kind's 128 GiB, not from MemTotal, which the default --memory-budget (80%) follows.
memory_args=(--memory-budget "${RINGSCAN_DEVICE_MEMORY:-100G}")

# 1. Packages into a private prefix. Only the libraries the machine lacks go on the search
#    path, so its own (libstdc++, libssl, ...) are never shadowed.
prefix=/tmp/ringscan-prefix
lib=$prefix/usr/lib/x86_64-linux-gnu
if ! ls .debs/*.deb >/dev/null 2>&1; then
  say "no .debs/: run scripts/fetch-device-debs.sh here and carry .debs"
  exit 2
fi
command -v dpkg >/dev/null || { say "no dpkg on this machine: cannot unpack .debs"; exit 2; }
mkdir -p "$prefix/missing"
for f in .debs/*.deb; do
  dpkg -x "$f" "$prefix" || { say "dpkg -x $f failed"; exit 2; }
done
# The cache listed once into a file: `ldconfig -p | grep -q` under pipefail fails whenever
# grep stops reading early (SIGPIPE), which would shadow the machine's own libraries.
ldconfig -p >"$prefix/ld-cache.txt" 2>/dev/null
for so in "$lib"/*.so.* "$prefix"/lib/x86_64-linux-gnu/*.so.* "$lib"/openblas-pthread/*.so.*; do
  [[ -e "$so" ]] || continue
  name=$(basename "$so")
  grep -q "^[[:space:]]*$name " "$prefix/ld-cache.txt" || ln -sf "$so" "$prefix/missing/$name"
done
export LD_LIBRARY_PATH=$prefix/missing${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# Debian's FAISS package names the BLAS of /usr (an alternatives link): point it at the
# prefix's OpenBLAS, which provides BLAS and LAPACK.
sed -i "s|/usr/lib/x86_64-linux-gnu/libblas.so|$lib/openblas-pthread/libopenblas.so|g; s|/usr/lib/x86_64-linux-gnu/liblapack.so|$lib/openblas-pthread/libopenblas.so|g" \
  "$lib/cmake/faiss/faiss-targets.cmake"
cmake_args=(
  -DCMAKE_BUILD_TYPE=Release -DRINGSCAN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DRINGSCAN_FUZZ=OFF
  -DRINGSCAN_TSAN=OFF  # a CPU test, run by CI; its target is not among those built below
  -DCMAKE_PREFIX_PATH="$prefix/usr;$lib/cmake;$lib/openblas-pthread/cmake"
  -DHDF5_C_INCLUDE_DIR="$prefix/usr/include/hdf5/serial"
  -DHDF5_C_LIBRARY_hdf5="$lib/libhdf5_serial.so"
  -DBLAS_LIBRARIES="$lib/openblas-pthread/libopenblas.so"
  -DLAPACK_LIBRARIES="$lib/openblas-pthread/libopenblas.so"
  # -include cstdint: these headers were built with Debian's gcc 12; a newer gcc no longer
  # brings <cstdint> in through other headers.
  -DCMAKE_CXX_FLAGS="-isystem $prefix/usr/include -isystem $prefix/usr/include/x86_64-linux-gnu -include cstdint"
  -DCMAKE_CUDA_FLAGS="-isystem $prefix/usr/include"
  -DCMAKE_EXE_LINKER_FLAGS="-L$prefix/missing -Wl,-rpath-link,$prefix/missing"
)
# ninja where there is one (the machine's image has it); a kept build-device/ keeps its own.
if [[ ! -f build-device/CMakeCache.txt ]] && command -v ninja >/dev/null; then
  cmake_args+=(-G Ninja)
fi
step configure 120 cmake -S . -B build-device "${cmake_args[@]}" || exit 1
step build 300 cmake --build build-device -j"$(nproc)" --target ringscan ringscan_tests bench_indices || exit 1
quick ./build-device/ringscan --version >"$logs/version.txt" 2>&1
tee -a "$report" <"$logs/version.txt"
# A device the runtime cannot use (a driver older than the toolkit, say) counts as none: every
# CUDA test would skip and the suite look green. Said loudly; the CPU steps still run.
# --version names the reason when there is one ("CUDA backend unusable here: ...").
if ! grep -q "^CUDA devices: [1-9]" "$logs/version.txt" ||
   grep -q "^CUDA backend unusable here" "$logs/version.txt"; then
  say "**the CUDA runtime sees no usable device: the CUDA tests will skip and the cuda runs fail**"
  failed+=("cuda-device:none")
  quick nvidia-smi 2>&1 | head -n 15 >>"$report"
fi

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
  if ! { quick build-device/ringscan generate -q -o "$data/tiny.h5" --accounts 300 --dim 16 &&
         quick build-device/ringscan info "$data/tiny.h5"; } >"$logs/isolation-check.log" 2>&1; then
    read_args=(--no-isolation)
    say "isolated reading failed on this machine (below): detections run with --no-isolation"
    tail -n 5 "$logs/isolation-check.log" | tee -a "$report"
  fi
}

# The inputs, generated one after the other in the background while the tests run (the
# generator takes minutes for the large file); each leaves NAME.rc ("status seconds",
# written whole) in $logs. The running `timeout` leads its own process group, whose id is
# in $logs/generator.pgid: the script pauses, resumes and at the end kills it through that.
generate_inputs() {
  local gen=(build-device/ringscan generate -q "${memory_args[@]}" --requests-per-account 10 --dim 256 --float16)
  local name args t0 rc
  for name in "$@"; do
    case $name in
      generate_100k) args=(-o "$data/100k.h5" --accounts 100000 --seed 303) ;;
      generate_1m) args=(-o "$data/1m.h5" --accounts 1000000 --seed 304) ;;
    esac
    t0=$(date +%s)
    if (( $(elapsed) > deadline - 30 )); then
      echo "no time left" >"$logs/$name.log"
      rc=skipped
    else
      timeout --kill-after=5 "$(( deadline - $(elapsed) ))" "${gen[@]}" "${args[@]}" >"$logs/$name.log" 2>&1 &
      echo "$!" >"$logs/generator.pgid"
      wait "$!"
      rc=$?
    fi
    echo "$rc $(( $(date +%s) - t0 ))" >"$logs/$name.rc.tmp" && mv "$logs/$name.rc.tmp" "$logs/$name.rc"
  done
}
# signal_generator SIGNAL: to the running generation's whole process group, if any.
signal_generator() {
  [[ -f "$logs/generator.pgid" ]] && kill "-$1" -- "-$(cat "$logs/generator.pgid")" 2>/dev/null
}
# wait_for NAME: until the background generation of NAME has ended (or the deadline); its
# outcome goes to the report once. Fails unless it succeeded.
wait_for() {
  local name=$1 t0 rc seconds
  if [[ -f "$logs/$name.reported" ]]; then
    read -r rc seconds <"$logs/$name.rc"
    [[ $rc == 0 ]]
    return
  fi
  t0=$(date +%s)
  while [[ ! -f "$logs/$name.rc" ]] && (( $(elapsed) < deadline - 10 )) && kill -0 "$generator" 2>/dev/null; do
    sleep 1
  done
  say ""
  if [[ ! -f "$logs/$name.rc" ]]; then
    say "## $name: did not finish (waited $(( $(date +%s) - t0 )) s, at $(elapsed)s)"
    tail -n 5 "$logs/$name.log" 2>/dev/null | tee -a "$report"
    touch "$logs/$name.reported"
    echo "unfinished 0" >"$logs/$name.rc"
    failed+=("$name:unfinished")
    return 1
  fi
  read -r rc seconds <"$logs/$name.rc"
  touch "$logs/$name.reported"
  say "## $name (background): exit $rc after $seconds s; waited $(( $(date +%s) - t0 )) s for it"
  tail -n 3 "$logs/$name.log" | tee -a "$report"
  [[ $rc == 0 ]] || failed+=("$name:$rc")
  [[ $rc == 0 ]]
}

# 2. The whole suite; the CUDA tests run here.
run_tests() {
  step tests 240 ctest --test-dir build-device --output-on-failure -j8
  tests_rc=$?
}

# detect_and_evaluate NAME INPUT DEVICE LIMIT: one detection, its stage summary and quality.
detect_and_evaluate() {
  local name=$1 input=$2 device=$3 limit=$4
  shift 4
  step "detect_$name" "$limit" build-device/ringscan detect -q "$input" ${read_args[@]+"${read_args[@]}"} \
    "${memory_args[@]}" -o "$data/$name.h5" --device "$device" --report "$out/$name.json" || return
  summarise "$out/$name.json" "$@"
  # Quality is secondary here: its failure does not void the timing.
  step "evaluate_$name" 60 build-device/ringscan evaluate -q "$data/$name.h5" --truth "$input" \
    ${read_args[@]+"${read_args[@]}"} "${memory_args[@]}"
  return 0
}

# 3. Speedup over the CPU backend on all cores: 100k accounts, 1M requests, D=256. The
#    large file's generation, if still running, is paused meanwhile: the timed CPU
#    detection must not share the cores with it.
run_speedup() {
  wait_for generate_100k || return
  local ok=1 device
  signal_generator STOP
  for device in cpu cuda; do
    detect_and_evaluate "100k-$device" "$data/100k.h5" "$device" 240 || ok=0
  done
  signal_generator CONT
  say ""
  if (( ok )); then
    say "## speedup, 100k accounts (target 20x)"
    python3 scripts/device_report.py speedup "$out/100k-cpu.json" "$out/100k-cuda.json" --target 20 2>&1 |
      tee -a "$report"
  else
    say "## speedup, 100k accounts: not computed (a detection above failed or was skipped)"
  fi
}

# 4. The large file: 1M accounts, 10M requests, D=256 in float16; the device joins it over a
#    k-means partition (cells of ~8192 rows, 2 probes).
run_large() {
  wait_for generate_1m || return
  detect_and_evaluate 1m-cuda "$data/1m.h5" cuda 420 --target 30
}

# 5. compute-sanitizer over the CUDA tests (it slows kernels down: the small sizes only):
#    memcheck over the CUDA tests, then racecheck (shared-memory hazards), synccheck (barriers
#    not reached by every thread) and initcheck (device memory read before written) over the
#    smallest stage tests, which still launch every kernel.
run_memcheck() {
  if ! command -v compute-sanitizer >/dev/null; then
    say "compute-sanitizer not found: memcheck, racecheck, synccheck and initcheck not run"
    return
  fi
  step memcheck 240 compute-sanitizer --tool memcheck --error-exitcode 3 \
    build-device/tests/ringscan_tests '--gtest_filter=*Cuda*:-*Sizes/CudaStages.*/2:CudaDetection.*'
  local small='--gtest_filter=Sizes/CudaStages.*/1:*CudaNearestRows*/0:*CudaNearestRows*/1:CudaRequestOrder.*'
  local tool
  for tool in racecheck synccheck initcheck; do
    step "$tool" 120 compute-sanitizer --tool "$tool" --error-exitcode 3 build-device/tests/ringscan_tests "$small"
  done
}

# 6. Stage benchmarks, CUDA variants only (the exact CPU request index at these sizes would
#    take hours; the CPU comparison is step 3).
run_bench() {
  step bench_indices 240 build-device/benchmarks/bench_indices --accounts=10000,40000 --dim=256 \
    --benchmark_filter='/cuda/' --benchmark_min_time=0.1
}

check_isolation
inputs=(generate_100k generate_1m)
[[ $skip_large -eq 1 ]] && inputs=(generate_100k)
[[ $large_only -eq 1 ]] && inputs=(generate_1m)
# Its output to files only: a background job holding stdout would hold the device call open.
generate_inputs "${inputs[@]}" >/dev/null 2>&1 &
generator=$!
if [[ $large_only -eq 1 ]]; then
  run_large
else
  run_tests
  run_speedup
  [[ $skip_large -eq 1 ]] || run_large
  run_memcheck
  run_bench
fi
if kill -0 "$generator" 2>/dev/null; then
  signal_generator CONT
  signal_generator KILL
  kill -KILL "$generator" 2>/dev/null
fi
say ""
say "total $(elapsed) s; tests exit $tests_rc; not succeeded: ${failed[*]:-none}"
pack_logs
(( tests_rc == 0 && ${#failed[@]} == 0 ))
