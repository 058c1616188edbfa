"""Medians of scaling runs, with the stage breakdown and log-log slopes.

usage: scaling_report.py RUNS_CSV OUT_DIR [--no-plot]
Writes OUT_DIR/scaling.csv and OUT_DIR/scaling.md (standard library only) and, unless
--no-plot, OUT_DIR/scaling.png (needs matplotlib).
"""
import csv
import json
import math
import statistics
import sys
from collections import defaultdict


def slope(xs, ys):
    """Least-squares slope of log y against log x: the exponent of the growth."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(max(y, 1e-9)) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    den = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / den if den > 0 else float("nan")


def main():
    runs_csv, out_dir = sys.argv[1], sys.argv[2]
    plot = "--no-plot" not in sys.argv
    runs = defaultdict(list)
    with open(runs_csv) as f:
        for row in csv.DictReader(f):
            with open(row["report"]) as r:
                report = json.load(r)
            runs[int(row["accounts"])].append(
                {"wall": float(row["wall_s"]), "rss_gb": int(row["peak_rss_kb"]) / 1024**2,
                 "stages": report["stage_seconds"],
                 "requests": report["statistics"]["requests"]})
    sizes = sorted(runs)
    stages = list(runs[sizes[0]][0]["stages"].keys())
    rows = []
    for n in sizes:
        rs = runs[n]
        row = {"accounts": n, "requests": int(rs[0]["requests"]), "runs": len(rs),
               "wall_s": statistics.median(r["wall"] for r in rs),
               "peak_rss_gb": statistics.median(r["rss_gb"] for r in rs)}
        for s in stages:
            row[s] = statistics.median(r["stages"].get(s, 0.0) for r in rs)
        rows.append(row)
    fields = list(rows[0].keys())
    with open(f"{out_dir}/scaling.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)

    xs = [r["accounts"] for r in rows]
    lines = ["| accounts | requests | wall (s) | peak RSS (GB) | " + " | ".join(stages) + " |",
             "| --- " * (4 + len(stages)) + "|"]
    for r in rows:
        lines.append(f"| {r['accounts']:,} | {r['requests']:,} | {r['wall_s']:.1f} | {r['peak_rss_gb']:.2f} | "
                     + " | ".join(f"{r[s]:.2f}" for s in stages) + " |")
    lines.append("")
    if len(rows) >= 2:
        growth = {s: slope(xs, [r[s] for r in rows]) for s in stages}
        lines.append(f"Log-log slopes against accounts: wall time {slope(xs, [r['wall_s'] for r in rows]):.2f}, "
                     f"peak memory {slope(xs, [r['peak_rss_gb'] for r in rows]):.2f}.")
        lines.append("Per stage: " + ", ".join(f"{s} {g:.2f}" for s, g in growth.items()) + ".")
        big = rows[-1]
        top = max(stages, key=lambda s: big[s])
        lines.append(f"At {big['accounts']:,} accounts the largest stage is {top} "
                     f"({big[top]:.1f} s of {big['wall_s']:.1f} s).")
    lines.append(f"Medians of {min(r['runs'] for r in rows)} or more runs per size.")
    with open(f"{out_dir}/scaling.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))

    if plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
        a.loglog(xs, [r["wall_s"] for r in rows], "o-", label=f"total (slope {slope(xs, [r['wall_s'] for r in rows]):.2f})", lw=2)
        for s in stages:
            ys = [max(r[s], 1e-3) for r in rows]
            if max(ys) > 0.05:
                a.loglog(xs, ys, ".--", label=f"{s} ({slope(xs, ys):.2f})")
        a.set_xlabel("accounts")
        a.set_ylabel("seconds")
        a.set_title("detect wall time (log-log)")
        a.legend(fontsize=7)
        ms = [r["peak_rss_gb"] for r in rows]
        b.loglog(xs, ms, "o-", color="C3", label=f"peak RSS (slope {slope(xs, ms):.2f})")
        b.set_xlabel("accounts")
        b.set_ylabel("GB")
        b.set_title("detect peak memory (log-log)")
        b.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(f"{out_dir}/scaling.png", dpi=110)


if __name__ == "__main__":
    main()
