#!/usr/bin/env bash
# How detect's cost grows with traffic: generates files of 10k to 300k accounts (about 25
# requests each, D=384, fixed seeds), runs `ringscan detect` on each several times under
# /usr/bin/time -v, and writes the medians with the stage breakdown to OUT_DIR/scaling.csv,
# OUT_DIR/scaling.md and OUT_DIR/scaling.png (log-log, with the fitted slopes).
#   benchmarks/scaling.sh [OUT_DIR] [--sizes 10000,30000,100000,300000] [--runs 3]
#                         [--threads N] [--device auto|cpu|cuda] [--data-dir DIR]
#                         [--keep-data]
# Needs a built build/ringscan (scripts/build.sh). The plot needs matplotlib, installed
# from PyPI into build/bench-venv on first use; the CSV and table need only python3.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out_dir=""
sizes="10000,30000,100000,300000"
runs=3
threads=0
device=cpu
data_dir=""
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sizes) sizes=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    --keep-data) keep=1; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "scaling.sh: unknown option $1" >&2; exit 2 ;;
    *) out_dir=$1; shift ;;
  esac
done
out_dir=${out_dir:-$root/build/scaling}
data_dir=${data_dir:-$out_dir/data}
ringscan="$root/build/ringscan"
[[ -x "$ringscan" ]] || { echo "scaling.sh: $ringscan not found; run scripts/build.sh first" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "scaling.sh: /usr/bin/time is needed (apt-get install time)" >&2; exit 1; }
mkdir -p "$out_dir" "$data_dir"

runs_csv="$out_dir/runs.csv"
echo "accounts,run,wall_s,peak_rss_kb,report" > "$runs_csv"
IFS=',' read -r -a size_list <<< "$sizes"
for n in "${size_list[@]}"; do
  input="$data_dir/g$n.h5"
  if [[ ! -f "$input" ]]; then
    echo "scaling: generating $n accounts" >&2
    "$ringscan" generate -q -o "$input" --accounts "$n" --dim 384 --seed "$((7000 + n % 997))"
  fi
  for ((r = 1; r <= runs; r++)); do
    report="$out_dir/report-$n-$r.json"
    "/usr/bin/time" -v -o "$out_dir/time-$n-$r.txt" \
      "$ringscan" detect -q "$input" -o "$out_dir/out-$n.h5" --report "$report" --threads "$threads" \
        --device "$device" > /dev/null
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$out_dir/time-$n-$r.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out_dir/time-$n-$r.txt")
    secs=$(python3 -c "import sys; p=sys.argv[1].split(':'); print(sum(float(x)*60**i for i,x in enumerate(reversed(p))))" "$wall")
    echo "$n,$r,$secs,$rss,$report" >> "$runs_csv"
    echo "scaling: $n accounts, run $r: ${secs}s, ${rss} KB" >&2
  done
  [[ $keep -eq 1 ]] || rm -f "$input"
done

python3 "$root/benchmarks/scaling_report.py" "$runs_csv" "$out_dir" --no-plot
# The plot: matplotlib from PyPI in a virtual environment of its own.
venv="${RINGSCAN_BENCH_VENV:-$root/build/bench-venv}"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "matplotlib==3.9.2"
fi
"$venv/bin/python" "$root/benchmarks/scaling_report.py" "$runs_csv" "$out_dir"
echo "scaling: wrote $out_dir/scaling.csv, scaling.md, scaling.png" >&2
