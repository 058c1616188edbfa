#!/usr/bin/env bash
# Runs the loader fuzzer for a bounded time, seeded with the generated corpus and the HDF5
# CVE reproducers (when present), and fails on any finding in ringscan's code.
#   fuzz/run_fuzz.sh FUZZER SEED_TOOL CVE_DIR [SECONDS]
# libFuzzer runs in fork mode and keeps going after a crash; each crash, timeout or
# out-of-memory input it saved is then replayed and classified by the first stack frame that
# is either in libhdf5 (a bug of the HDF5 library: expected, the CLI's isolated reader turns
# it into a clean error) or in ringscan's sources (a bug of ours: the test fails). A report
# with neither fails too. Leak detection is off here: HDF5 1.10 leaks on many error paths;
# our own cleanup is checked by the sanitizer test suite.
set -euo pipefail
fuzzer=$1 seed_tool=$2 cve_dir=$3 seconds=${4:-20}
src=$(cd "$(dirname "$0")/.." && pwd)
# On tmpfs where there is one: every input is written to a file there (see fuzz_loader.cpp).
base=${TMPDIR:-/tmp}
[[ -w /dev/shm ]] && base=/dev/shm
work=$(mktemp -d "$base/ringscan_fuzz.XXXXXX")
trap '[[ -n ${RUN_FUZZ_KEEP:-} ]] || rm -rf "$work"' EXIT
mkdir -p "$work/seeds" "$work/corpus" "$work/artifacts" "$work/tmp"
export TMPDIR=$work/tmp
"$seed_tool" "$work/seeds"
if [[ -d $cve_dir ]]; then
  find "$cve_dir" -maxdepth 1 -type f -exec cp {} "$work/seeds/" \;
else
  echo "run_fuzz: no CVE reproducers at $cve_dir; generated seeds only"
fi
echo "run_fuzz: $(find "$work/seeds" -type f | wc -l) seed files, ${seconds} s"

# A huge allocation returns null, as glibc's malloc would, instead of ending the process.
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1
export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer || true)}
options=(-timeout=2 -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=65536)
"$fuzzer" "${options[@]}" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -seed=1 \
  -max_total_time="$seconds" -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
  "$work/corpus" "$work/seeds" >"$work/log" 2>&1 || true
grep -E '^#[0-9]+: cov|INFO: fuzzed|INFO: exiting|INFO: -fork' "$work/log" | tail -4
if ! grep -q 'INFO: fuzzed for' "$work/log"; then
  tail -40 "$work/log"
  echo "run_fuzz: the fuzzer did not finish its run" >&2
  exit 1
fi

ours=0 hdf5=0 alone=0
for artifact in "$work/artifacts"/*; do
  [[ -e $artifact ]] || continue
  report=$("$fuzzer" "${options[@]}" -runs=1 "$artifact" 2>&1 || true)
  # Frames read "#N 0x... in FUNCTION FILE:LINE" or "#N 0x... in FUNCTION (MODULE+0x...)".
  # awk reads the whole report: leaving early would end printf with SIGPIPE on a long
  # report, and pipefail would end this script.
  verdict=$(printf '%s\n' "$report" | awk -v src="$src/" '
    verdict == "" && /^ +#[0-9]+ / {
      if (index($0, "libhdf5")) verdict = "hdf5"
      else if (index($0, src "host/") || index($0, src "fuzz/fuzz_loader.cpp") || index($0, "ringscan::")) verdict = "ours"
    }
    END { if (verdict != "") print verdict }')
  summary=$(printf '%s\n' "$report" | grep -m1 -E 'ERROR|ALARM|SUMMARY' || true)
  name=$(basename "$artifact")
  if [[ $verdict == hdf5 ]]; then
    hdf5=$((hdf5 + 1))
    echo "run_fuzz: $name: inside libhdf5: $summary"
  elif [[ -z $verdict && -z $summary ]]; then
    # HDF5 keeps state across inputs (free lists, which also hide its heap errors from
    # ASan): an input that only fails after others did is counted, not failed on.
    alone=$((alone + 1))
    echo "run_fuzz: $name: does not fail when replayed alone"
  else
    ours=$((ours + 1))
    echo "run_fuzz: $name: NOT inside libhdf5 (${verdict:-no frame of libhdf5 or ringscan}):"
    printf '%s\n' "$report" | grep -E 'ERROR|SUMMARY|^ +#' | head -30 || true
  fi
done
echo "run_fuzz: findings inside libhdf5: $hdf5, not failing alone: $alone, elsewhere: $ours"
[[ $ours -eq 0 ]]
