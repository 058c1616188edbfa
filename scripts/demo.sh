#!/usr/bin/env bash
# End-to-end demo on a fresh machine: installs what is missing, builds, generates a sample
# data set with planted rings and look-alikes, detects rings, evaluates the result and
# writes the analyst's HTML report (rings.html).
#   scripts/demo.sh [WORK_DIR]     (default: demo-out in the repository)
set -euo pipefail

caller_dir=$(pwd)
cd "$(dirname "$0")/.."
root=$(pwd)

work_dir=${1:-$root/demo-out}
# A relative WORK_DIR means relative to where the script was called from.
[[ "$work_dir" = /* ]] || work_dir="$caller_dir/$work_dir"

scripts/build.sh build
ringscan="$root/build/ringscan"

mkdir -p "$work_dir"
cd "$work_dir"

section() { printf '\n== %s ==\n' "$*"; }

section "ringscan --version"
"$ringscan" --version

section "generate: 5000 accounts with planted rings, teams, trending crowds, viral prompts"
"$ringscan" generate -o sample.h5 --accounts 5000 --seed 7

section "info sample.h5"
"$ringscan" info sample.h5

section "detect: top rings with their evidence"
"$ringscan" detect sample.h5 -o rings.h5 --report rings.json

section "report: the top ring as listed in rings.json"
python3 - rings.json <<'PY'
import json, sys

def shorten(value, limit=8):
    """Long member and row lists are cut, so that one ring fits on a screen."""
    if isinstance(value, list):
        head = [shorten(v, limit) for v in value[:limit]]
        return head + [f"... ({len(value) - limit} more)"] if len(value) > limit else head
    if isinstance(value, dict):
        return {k: shorten(v, limit) for k, v in value.items()}
    return value

def show(value, indent=0):
    """YAML-like listing; lists of plain values stay on one line."""
    pad = "  " * indent
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and not is_flat(v):
                print(f"{pad}{k}:")
                show(v, indent + 1)
            else:
                print(f"{pad}{k}: {json.dumps(v)}")
    elif isinstance(value, list) and not is_flat(value):
        for item in value:
            print(f"{pad}-")
            show(item, indent + 1)
    else:
        print(f"{pad}{json.dumps(value)}")

def is_flat(value):
    return isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value)

with open(sys.argv[1]) as f:
    report = json.load(f)
rings = report.get("rings", []) if isinstance(report, dict) else report
if rings:
    show(shorten(rings[0]))
else:
    print("no rings reported")
PY

section "evaluate against the planted rings"
"$ringscan" evaluate rings.h5 --truth sample.h5 --json evaluation.json >/dev/null
python3 - evaluation.json <<'PY'
import json, sys

with open(sys.argv[1]) as f:
    m = json.load(f)
print(f"ring recall         {m['ring_recall']:.3f}  "
      f"({m['found_rings']} of {m['planted_rings']} planted rings found, Jaccard >= 0.5)")
print(f"account precision   {m['account_precision']:.3f}  "
      f"({m['false_ring_accounts']} accounts reported that are in no planted ring)")
print(f"account recall      {m['account_recall']:.3f}")
print(f"adjusted Rand index {m['adjusted_rand_index']:.3f}")
print(f"reported rings      {m['reported_rings']}")
l = m.get("lookalikes_reported")
if l:
    print(f"look-alikes accused {l['team_accounts']} company-team, {l['crowd_accounts']} "
          f"trending-crowd, {l['viral_sharer_accounts']} viral-sharer accounts; "
          f"{l['mostly_innocent_rings']} rings made mostly of innocent accounts")
missed = [r for r in m["per_ring"] if not r["found"]]
for r in missed[:10]:
    print(f"  missed planted ring {r['truth_label']} ({r['truth_size']} accounts): "
          f"best Jaccard {r['jaccard']:.2f}")
PY

section "report: the analyst's page of the rings and their evidence"
"$ringscan" report -q rings.h5 --input sample.h5 -o rings.html

printf '\nfiles in %s: sample.h5 (input), rings.h5 (output), rings.json (report), evaluation.json\n' \
  "$work_dir"
printf 'open the report in a browser: %s\n' "$work_dir/rings.html"
