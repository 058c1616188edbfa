#!/usr/bin/env python3
"""Writes the robustness matrix's report (markdown) from benchmarks/robustness.sh's results.

    robustness_report.py RESULTS_DIR OUT.md [--accounts N] [--seeds "S ..."]
                         [--fixture-accounts N] [--fixture-seeds "S ..."]

Each result is one `ringscan evaluate` JSON named generate.REGIME.SEED.json or
realtext.minilm.SEED.json. A regime passes when every seed meets the floors of the issue
that set them: ring recall >= 0.95, account precision >= 0.99, account recall >= 0.95, no
look-alike (team, crowd, viral sharer, template-app user, proxy-service customer) in a
reported ring; the required-only regime is held to ring recall >= 0.9 on rings of prompt
templates; the proxy-network regime to the network found as one ring, ring recall >= 0.95
and account precision >= 0.99 (the network's lightest accounts, with one or two requests
from the operator's templates, are past finding; its account recall is reported).
"""
import argparse
import json
import os
import sys

FLOORS = {"ring_recall": 0.95, "account_precision": 0.99, "account_recall": 0.95}
TEMPLATE_FLOOR = 0.9
REGIMES = [
    ("default", "the generator's default traffic"),
    ("population-behaviour", "ring members' clients as varied as anybody's"),
    ("noise-features-8", "eight extra behaviour columns of noise"),
    ("noise-features-24", "twenty-four extra behaviour columns of noise"),
    ("no-features", "no /accounts/features"),
    ("no-times", "no /requests/time"),
    ("sessions-over-hours", "rings work in 1-3 hour sessions, not bursts"),
    ("light-accounts", "ring members send 2-5 requests"),
    ("half-cover-traffic", "half of every ring's traffic is cover"),
    ("required-only", "only /requests/account and /requests/embedding"),
    ("infrastructure", "IP ranges, fingerprints, cards, sign-up times; rings on proxy pools, half rented from a "
                       "service 5% of ordinary customers use"),
    ("infrastructure-no-times", "the same without /requests/time"),
    ("proxy-network", "with infrastructure, and a tenth of the accounts run by one proxy network: 1-3 requests "
                      "a day, 50-90% of them resold ordinary traffic, through the proxy service"),
    ("minilm", "real texts embedded with all-MiniLM-L6-v2 (benchmarks/realtext)"),
]


def lookalikes(d):
    l = d.get("lookalikes_reported", {})
    return sum(l.get(k, 0) for k in ("team_accounts", "crowd_accounts", "viral_sharer_accounts",
                                      "template_app_accounts", "proxy_customer_accounts"))


def passes(regime, d):
    if regime == "proxy-network":
        return (d.get("ring_recall_by_style", {}).get("proxy-network") == 1.0
                and d["ring_recall"] >= FLOORS["ring_recall"]
                and d["account_precision"] >= FLOORS["account_precision"] and lookalikes(d) == 0)
    if regime == "required-only":
        t = d.get("ring_recall_by_style", {}).get("templates")
        return (t is not None and t >= TEMPLATE_FLOOR and d["account_precision"] >= FLOORS["account_precision"]
                and lookalikes(d) == 0)
    return all(d[k] >= v for k, v in FLOORS.items()) and lookalikes(d) == 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("results")
    p.add_argument("out")
    p.add_argument("--accounts", default="?")
    p.add_argument("--seeds", default="")
    p.add_argument("--fixture-accounts", default="?")
    p.add_argument("--fixture-seeds", default="")
    a = p.parse_args()
    runs = {}
    for name in sorted(os.listdir(a.results)):
        if not name.endswith(".json"):
            continue
        kind, regime, seed = name[:-5].split(".")
        runs.setdefault(regime, []).append((int(seed), json.load(open(os.path.join(a.results, name)))))
    lines = [
        "# Robustness matrix",
        "",
        "Detection at default parameters over regimes that each take away or blur one kind of",
        "evidence, written by `benchmarks/robustness.sh`. Generated files: `ringscan generate",
        f"--accounts {a.accounts}` with the regime's options, seeds {a.seeds or '-'}; real texts:",
        f"`benchmarks/realtext/build_fixture.py --accounts {a.fixture_accounts}`, seeds {a.fixture_seeds or '-'}.",
        "The defaults were chosen on generator seeds 1 and 2 and fixture seeds 1, 4 and 5, none of them below.",
        "",
        "A regime passes when every seed reaches ring recall >= 0.95, account precision >= 0.99,",
        "account recall >= 0.95 and accuses no look-alike (team, crowd, viral sharer, template-app",
        "user, proxy-service customer); only-the-required-datasets is held to ring recall >= 0.9 on",
        "rings of prompt templates (the sub-groups of a ring split across capabilities share no",
        "prompt, and without times or behaviour nothing joins them); proxy-network to the network",
        "found as one ring, ring recall >= 0.95 and account precision >= 0.99 (its lightest",
        "accounts send one or two requests from the operator's templates; its account recall is",
        "reported). Per cell: the seeds' values in order.",
        "",
        "| regime | ring recall | account precision | account recall | look-alikes accused | templates found | detect (s) | |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    verdicts = []
    for regime, what in REGIMES:
        if regime not in runs:
            continue
        rs = [d for _, d in sorted(runs[regime])]
        fmt = lambda key, f="{:.2f}": " / ".join(f.format(d[key]) for d in rs)
        templates = " / ".join(f"{d['ring_recall_by_style']['templates']:.2f}"
                               if "templates" in d.get("ring_recall_by_style", {}) else "-" for d in rs)
        ok = all(passes(regime, d) for d in rs)
        verdicts.append((regime, ok))
        lines.append(f"| {regime}: {what} | {fmt('ring_recall')} | {fmt('account_precision', '{:.3f}')} | "
                     f"{fmt('account_recall', '{:.3f}')} | {' / '.join(str(lookalikes(d)) for d in rs)} | {templates} | "
                     f"{fmt('detect_seconds', '{:.1f}')} | {'pass' if ok else '**fails**'} |")
    failing = [r for r, ok in verdicts if not ok]
    lines += ["", f"{len(verdicts) - len(failing)} of {len(verdicts)} regimes pass"
              + (f"; failing: {', '.join(failing)}." if failing else "."), ""]
    with open(a.out + ".tmp", "w") as f:
        f.write("\n".join(lines))
    os.replace(a.out + ".tmp", a.out)


if __name__ == "__main__":
    sys.exit(main())
