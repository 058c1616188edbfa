#!/usr/bin/env bash
# Distributed detection's scaling: `mpirun -np N ringscan detect` at N = 1, 2, 4 ranks (one
# thread each), beside the one-process run (`ringscan detect --threads 1`).
#   weak scaling:   a fixed number of accounts (so of requests) per rank: files of
#                   N x ACCOUNTS_PER_RANK accounts;
#   strong scaling: one file of STRONG_ACCOUNTS accounts on every N.
# Writes OUT_DIR/mpi_scaling.md (the tables: wall time, time per stage, bytes each stage
# exchanged, each rank's peak memory, and whether every output equals the one-process
# output in /accounts and /rings) and OUT_DIR/runs/ (the reports).
#   benchmarks/mpi_scaling.sh [OUT_DIR] [--ranks 1,2,4] [--accounts-per-rank 5000]
#                             [--strong-accounts 20000] [--dim 384] [--seed 31] [--runs 3]
# Each run is repeated --runs times; the tables give the median wall time.
# Needs a build with MPI (RINGSCAN_MPI found it: build-dev or build, see docs/development.md)
# and mpirun; python3 for the tables.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out_dir=""
ranks_list="1,2,4"
per_rank=5000
strong=20000
dim=384
seed=31
runs=3
ringscan=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --ranks) ranks_list=$2; shift 2 ;;
    --accounts-per-rank) per_rank=$2; shift 2 ;;
    --strong-accounts) strong=$2; shift 2 ;;
    --dim) dim=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --ringscan) ringscan=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "mpi_scaling.sh: unknown option $1" >&2; exit 2 ;;
    *) out_dir=$1; shift ;;
  esac
done
out_dir=${out_dir:-$root/build/mpi_scaling}
if [[ -z "$ringscan" ]]; then
  for candidate in "$root/build/ringscan" "$root/build-dev/ringscan"; do
    [[ -x "$candidate" ]] && { ringscan=$candidate; break; }
  done
fi
[[ -x "$ringscan" ]] || { echo "mpi_scaling.sh: no built ringscan (scripts/build.sh); or pass --ringscan PATH" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "mpi_scaling.sh: mpirun not found (Debian: openmpi-bin)" >&2; exit 1; }
mpi=(mpirun --oversubscribe)
[[ $(id -u) -eq 0 ]] && mpi+=(--allow-run-as-root)
mkdir -p "$out_dir/runs" "$out_dir/data"
rm -f "$out_dir/runs/wall.txt"
IFS=, read -r -a ranks <<<"$ranks_list"

# One detection: the report JSON at runs/NAME.json, the output beside it.
detect() {  # name ranks input
  local name=$1 n=$2 input=$3
  local out="$out_dir/runs/$name.h5" report="$out_dir/runs/$name.json"
  local started run
  for ((run = 0; run < runs; ++run)); do
    started=$(date +%s.%N)
    if [[ $n -eq 0 ]]; then
      "$ringscan" detect -q --threads 1 "$input" -o "$out" --report "$report" >/dev/null 2>&1
    else
      "${mpi[@]}" -np "$n" "$ringscan" detect -q --threads 1 "$input" -o "$out" --report "$report" >/dev/null 2>&1
    fi
    awk -v name="$name" -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%s %.3f\n", name, b - a }' >>"$out_dir/runs/wall.txt"
  done
}

make_input() {  # accounts -> path
  local path="$out_dir/data/accounts-$1.h5"
  [[ -f "$path" ]] || "$ringscan" generate -q -o "$path" --accounts "$1" --dim "$dim" --seed "$seed" >/dev/null
  echo "$path"
}

for n in "${ranks[@]}"; do
  input=$(make_input $((per_rank * n)))
  echo "mpi_scaling: weak, $n rank(s): $input" >&2
  detect "weak-$n-one" 0 "$input"
  detect "weak-$n-ranks" "$n" "$input"
done
input=$(make_input "$strong")
echo "mpi_scaling: strong: $input" >&2
detect "strong-one" 0 "$input"
for n in "${ranks[@]}"; do detect "strong-$n-ranks" "$n" "$input"; done

python3 "$root/benchmarks/mpi_scaling_report.py" "$out_dir" "$ranks_list" "$per_rank" "$strong" >"$out_dir/mpi_scaling.md"
echo "mpi_scaling: wrote $out_dir/mpi_scaling.md" >&2
