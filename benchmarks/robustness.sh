#!/usr/bin/env bash
# The robustness matrix: detection at default parameters over regimes that each take away or
# blur one kind of evidence, on files of `ringscan generate` and on a fixture of real texts
# embedded with all-MiniLM-L6-v2 (benchmarks/realtext), each over several seeds. Writes
# OUT_DIR/results/*.json (one `ringscan evaluate` per run) and the report
# docs/benchmarks/robustness.md (or --report PATH).
#
#   benchmarks/robustness.sh [--accounts N] [--seeds "S ..."] [--fixture-accounts N]
#                            [--fixture-seeds "S ..."] [--no-fixture] [--threads N]
#                            [--ringscan PATH] [--out OUT_DIR] [--report PATH]
#
# --accounts N         accounts of each generated file (default 10000)
# --seeds "S ..."      generator seeds (default "101 102 103": the defaults were chosen on
#                      seeds 1 and 2, which the report names)
# --fixture-accounts N accounts of each real-text fixture (default 4000)
# --fixture-seeds      fixture seeds (default "2 3 6 7"; the defaults were chosen on seeds 1, 4, 5)
# --no-fixture         leave the real-text fixture out (it needs PyPI and Debian packages
#                      and about ten minutes of embedding per seed on two cores, once: the
#                      vectors are cached in OUT_DIR/embedding-cache)
# --threads N          threads of every run (default: all cores)
# --ringscan PATH      the binary (default build/ringscan)
# --out OUT_DIR        inputs, outputs and results (default build/robustness)
# Inputs are kept and reused: a second run only detects again.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }
die() { echo "robustness.sh: error: $*" >&2; exit 2; }

accounts=10000
seeds="101 102 103"
fixture_accounts=4000
fixture_seeds="2 3 6 7"
fixture=1
threads="$(nproc)"
ringscan="$repo/build/ringscan"
out="$repo/build/robustness"
report="$repo/docs/benchmarks/robustness.md"
while (($#)); do
  case "$1" in
    --accounts) accounts="${2:?}"; shift 2 ;;
    --seeds) seeds="${2:?}"; shift 2 ;;
    --fixture-accounts) fixture_accounts="${2:?}"; shift 2 ;;
    --fixture-seeds) fixture_seeds="${2:?}"; shift 2 ;;
    --no-fixture) fixture=0; shift ;;
    --threads) threads="${2:?}"; shift 2 ;;
    --ringscan) ringscan="${2:?}"; shift 2 ;;
    --out) out="${2:?}"; shift 2 ;;
    --report) report="${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ -x "$ringscan" ]] || die "no ringscan binary at $ringscan (build it with scripts/build.sh)"
[[ "$accounts" =~ ^[0-9]+$ && "$accounts" -ge 100 ]] || die "--accounts must be a number >= 100"
mkdir -p "$out/inputs" "$out/outputs" "$out/results"

# name | generate options. Each regime takes one kind of evidence away or blurs it.
regimes=(
  "default|"
  "population-behaviour|--ring-population-behaviour"
  "noise-features-8|--noise-features 8"
  "noise-features-24|--noise-features 24"
  "no-features|--no-features"
  "no-times|--no-times"
  "sessions-over-hours|--ring-sessions"
  "light-accounts|--light-rings"
  "half-cover-traffic|--ring-cover 0.5"
  "required-only|--no-features --no-times"
  "infrastructure|--infra"
  "infrastructure-no-times|--infra --no-times"
  "proxy-network|--infra --proxy-network 0.1"
)

# Detects and evaluates one input into results/NAME.json, with the detection's wall time.
run_one() {
  local name="$1" input="$2"
  local output="$out/outputs/$name.h5" result="$out/results/$name.json"
  local started ended
  started=$(date +%s%N)
  "$ringscan" detect "$input" -o "$output" --threads "$threads" -q 2> "$out/outputs/$name.log" > /dev/null ||
    { echo "robustness.sh: detect failed on $input (see $out/outputs/$name.log)" >&2; return 1; }
  ended=$(date +%s%N)
  "$ringscan" evaluate "$output" --truth "$input" -q --json "$result.tmp" > /dev/null
  python3 - "$result.tmp" "$result" "$(( (ended - started) / 1000000 ))" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["detect_seconds"] = int(sys.argv[3]) / 1000
json.dump(d, open(sys.argv[2], "w"), indent=1)
PY
  rm -f "$result.tmp"
  echo "robustness.sh: $name done" >&2
}

for entry in "${regimes[@]}"; do
  name="${entry%%|*}"
  options="${entry#*|}"
  for seed in $seeds; do
    input="$out/inputs/$name-$accounts-$seed.h5"
    if [[ ! -f "$input" ]]; then
      # shellcheck disable=SC2086  # the options are words
      "$ringscan" generate -o "$input" --accounts "$accounts" --seed "$seed" --threads "$threads" -q $options > /dev/null
    fi
    run_one "generate.$name.$seed" "$input"
  done
done

if [[ $fixture -eq 1 ]]; then
  python="$("$here/realtext/setup.sh" "$repo/build/realtext-venv")"
  for seed in $fixture_seeds; do
    input="$out/inputs/realtext-$fixture_accounts-$seed.h5"
    [[ -f "$input" ]] || "$python" "$here/realtext/build_fixture.py" -o "$input" --accounts "$fixture_accounts" \
      --rings $((fixture_accounts * 3 / 1000)) --seed "$seed" --cache "$out/embedding-cache"
    run_one "realtext.minilm.$seed" "$input"
  done
fi

python3 "$here/robustness_report.py" "$out/results" "$report" --accounts "$accounts" --seeds "$seeds" \
  --fixture-accounts "$fixture_accounts" --fixture-seeds "$( [[ $fixture -eq 1 ]] && echo "$fixture_seeds" )"
echo "robustness.sh: wrote $report" >&2
