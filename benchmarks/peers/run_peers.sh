#!/usr/bin/env bash
# Runs ringscan and its peers (benchmarks/peers/peers.py) on one input file, each as its own
# process under /usr/bin/time -v with the same thread count, evaluates every result with
# `ringscan evaluate` and writes OUT_DIR/peers.csv and OUT_DIR/peers.md.
#
#   benchmarks/peers/run_peers.sh INPUT.h5 OUT_DIR [--threads N] [--ringscan PATH]
#                                 [--methods LIST]
#
# --threads N      threads for every method (default: all cores, nproc)
# --ringscan PATH  the ringscan binary (default: build/ringscan under the repository root)
# --methods LIST   comma-separated subset of: ringscan,dbscan,hdbscan,knn_leiden,dup_components
#                  (default: all of them)
#
# The Python peers run in a virtualenv, created on first use with `python3 -m venv` and
# `pip install -r benchmarks/peers/requirements.txt` (again when that file changes):
# build/peers-venv under the repository root, or $RINGSCAN_PEERS_VENV.
# Exit status: 0 when every method ran, 1 when one failed (its row says so), 2 on bad usage.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
all_methods="ringscan,dbscan,hdbscan,knn_leiden,dup_components"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }
die() { echo "run_peers.sh: error: $*" >&2; exit 2; }

threads="$(nproc)"
runs=1
ringscan="$repo/build/ringscan"
methods="$all_methods"
positional=()
while (($#)); do
  case "$1" in
    --threads) [[ $# -ge 2 ]] || die "--threads needs a value"; threads="$2"; shift 2 ;;
    --threads=*) threads="${1#*=}"; shift ;;
    --ringscan) [[ $# -ge 2 ]] || die "--ringscan needs a value"; ringscan="$2"; shift 2 ;;
    --ringscan=*) ringscan="${1#*=}"; shift ;;
    --methods) [[ $# -ge 2 ]] || die "--methods needs a value"; methods="$2"; shift 2 ;;
    --runs) [[ $# -ge 2 ]] || die "--runs needs a value"; runs="$2"; shift 2 ;;
    --runs=*) runs="${1#*=}"; shift ;;
    --methods=*) methods="${1#*=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) positional+=("$1"); shift ;;
  esac
done
[[ ${#positional[@]} -eq 2 ]] || { usage >&2; exit 2; }
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer, got '$threads'"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, got '$runs'"
input="${positional[0]}"
out_dir="${positional[1]}"
[[ -f "$input" ]] || die "input file '$input' not found"
[[ -x "$ringscan" ]] || die "ringscan binary '$ringscan' not found or not executable (--ringscan PATH)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (Debian: apt-get install time)"
IFS=',' read -r -a selected <<<"$methods"
for m in "${selected[@]}"; do
  [[ ",$all_methods," == *",$m,"* ]] || die "unknown method '$m' (one of $all_methods)"
done
input="$(realpath "$input")"
ringscan="$(realpath "$ringscan")"
mkdir -p "$out_dir"
out_dir="$(realpath "$out_dir")"

# --- the virtualenv -------------------------------------------------------------------------
venv="${RINGSCAN_PEERS_VENV:-$repo/build/peers-venv}"
requirements="$here/requirements.txt"
stamp="$venv/.peers-requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python3" ]]; then
  echo "run_peers.sh: creating the virtualenv $venv" >&2
  python3 -m venv "$venv"
fi
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "run_peers.sh: installing $requirements into $venv" >&2
  "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" >"$stamp"
fi
export PATH="$venv/bin:$PATH"   # `python3` below is the virtualenv's

# --- same threads for everyone ---------------------------------------------------------------
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
export VECLIB_MAXIMUM_THREADS="$threads" NUMEXPR_NUM_THREADS="$threads"

# Seconds from /usr/bin/time's "h:mm:ss" or "m:ss.ss".
wall_seconds() {
  awk -F': ' '/Elapsed \(wall clock\) time/ {
      n = split($NF, p, ":"); s = 0
      for (i = 1; i <= n; i++) s = s * 60 + p[i]
      printf "%.2f\n", s; found = 1 }
    END { if (!found) print "" }' "$1"
}
rss_kb() {
  awk -F': ' '/Maximum resident set size \(kbytes\)/ { print $NF + 0; found = 1 }
    END { if (!found) print "" }' "$1"
}

timings="$out_dir/timings.tsv"
: >"$timings"
failed=0
cd "$repo"
python3 benchmarks/peers/peers.py --info "$out_dir" --input "$input" --threads "$threads"

# Each method runs --runs times in turn; the summary takes medians of time and memory (the
# quality figures are the same every run: every method is deterministic).
for ((run = 1; run <= runs; run++)); do
for m in "${selected[@]}"; do
  out="$out_dir/$m.h5"
  time_file="$out_dir/$m.time"
  log_file="$out_dir/$m.log"
  rm -f "$out" "$out_dir/$m.eval.json" "$time_file"
  [[ "$m" == ringscan ]] || rm -f "$out_dir/$m.sweep.json"
  echo "run_peers.sh: $m ($threads threads) ..." >&2
  if [[ "$m" == ringscan ]]; then
    cmd=("$ringscan" detect "$input" -o "$out" --threads "$threads" --device cpu -q)
  else
    cmd=(python3 benchmarks/peers/peers.py --method "$m" --input "$input" --output "$out"
         --sweep-json "$out_dir/$m.sweep.json" --threads "$threads")
  fi
  status=ok note=""
  rc=0
  /usr/bin/time -v -o "$time_file" "${cmd[@]}" >"$log_file" 2>&1 || rc=$?
  if ((rc != 0)); then
    status="failed" note="(exit $rc, see $m.log)"
  elif ! "$ringscan" evaluate "$out" --truth "$input" --json "$out_dir/$m.eval.json" -q \
      >/dev/null 2>>"$log_file"; then
    status="failed" note="(evaluate failed, see $m.log)"
  fi
  [[ "$status" == ok ]] || failed=1
  wall="$(wall_seconds "$time_file" 2>/dev/null || true)"
  rss="$(rss_kb "$time_file" 2>/dev/null || true)"
  printf '%s\t%s\t%s\t%s\t%s\n' "$m" "$status" "$wall" "$rss" "$note" >>"$timings"
  echo "run_peers.sh: $m (run $run of $runs): $status, ${wall:-?} s, peak RSS ${rss:-?} kB $note" >&2
done
done

python3 benchmarks/peers/peers.py --summarise "$out_dir"
cat "$out_dir/peers.md"
exit "$failed"
