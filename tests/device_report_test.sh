#!/usr/bin/env bash
# scripts/device_report.py against real `ringscan detect --report` output, so that the figures
# of scripts/device-check.sh do not silently break when the report's layout changes.
#   device_report_test.sh RINGSCAN_BINARY SCRIPTS_DIR
set -euo pipefail
ringscan=$1
scripts=$2
if ! command -v python3 >/dev/null; then
  echo "python3 not found: device_report.py not tested"
  exit 77  # SKIP_RETURN_CODE
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$ringscan" generate -q -o "$work/in.h5" --accounts 400 --dim 32 --seed 7
"$ringscan" detect -q "$work/in.h5" -o "$work/out.h5" --device cpu --report "$work/r.json"
stages=$(python3 "$scripts/device_report.py" stages "$work/r.json" --target 1000)
echo "$stages"
grep -Eq '^stages: .*request_index [0-9.]+ s.*; total [0-9.]+ s$' <<<"$stages"
grep -q '^target: under 1000 s end to end: met' <<<"$stages"
speedup=$(python3 "$scripts/device_report.py" speedup "$work/r.json" "$work/r.json" --target 20)
echo "$speedup"
grep -q '^warning: both reports are of the cpu backend' <<<"$speedup"
grep -q 'speedup 1.0x in all' <<<"$speedup"
grep -q '^target: a speedup of 20x in all: NOT met' <<<"$speedup"
# The same run on both sides: the ceiling is its total over its load and the order's host part.
expected=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); s=r['stage_seconds']
print(f\"{sum(s.values()) / (s['load'] + r['statistics']['order_host_seconds']):.1f}x\")" "$work/r.json")
grep -q "^ceiling: $expected in all were the device stages free" <<<"$speedup"
grep -q "^ceiling: $expected were every device stage free" <<<"$stages"
# A file that is not a report is an error, not a figure.
if python3 "$scripts/device_report.py" stages "$work/in.h5" 2>/dev/null; then
  echo "device_report.py accepted an HDF5 file as a report" >&2
  exit 1
fi
echo "device_report.py: ok"
