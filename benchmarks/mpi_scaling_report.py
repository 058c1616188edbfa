#!/usr/bin/env python3
"""Tables of benchmarks/mpi_scaling.sh's runs: wall time, time per stage, bytes exchanged per
stage, each rank's peak memory, and whether the ranks' output equals the one process's.

    mpi_scaling_report.py OUT_DIR RANKS PER_RANK STRONG_ACCOUNTS   (markdown on stdout)
"""
import json
import statistics
import subprocess
import sys
from pathlib import Path

STAGES = ["load", "order", "background", "account_content", "request_index", "prompt_groups",
          "account_profiles", "infrastructure", "account_index", "calibration", "evidence_graph",
          "clustering", "ring_scoring"]
EXCHANGED = ["order", "background", "request_index", "account_profiles", "evidence_graph"]


def load(runs, name):
    return json.loads((runs / f"{name}.json").read_text())


def same_output(runs, a, b):
    """True when /accounts and /rings of the two outputs hold the same values (h5diff)."""
    for group in ("/accounts", "/rings"):
        if subprocess.run(["h5diff", "-q", str(runs / f"{a}.h5"), str(runs / f"{b}.h5"), group, group]).returncode:
            return False
    return True


def mb(x):
    return f"{x / 1e6:,.0f}"


def rank_peaks(report):
    s = report["statistics"]
    peaks = [v for k, v in s.items() if k.startswith("rank_peak_resident_bytes.")]
    return peaks or [s.get("peak_resident_bytes", 0)]


def main():
    out, ranks, per_rank, strong = Path(sys.argv[1]), [int(r) for r in sys.argv[2].split(",")], int(sys.argv[3]), int(sys.argv[4])
    runs = out / "runs"
    times = {}
    for line in (runs / "wall.txt").read_text().splitlines():
        name, seconds = line.split()
        times.setdefault(name, []).append(float(seconds))
    wall = {k: statistics.median(v) for k, v in times.items()}  # the median of the repeated runs
    print("### Weak scaling: %d accounts per rank, one thread per rank\n" % per_rank)
    print("| ranks | accounts | requests | one process (s) | ranks (s) | efficiency | max rank peak / one process | same output |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    base = wall[f"weak-{ranks[0]}-one"]
    for n in ranks:
        one, dist = load(runs, f"weak-{n}-one"), load(runs, f"weak-{n}-ranks")
        peak = max(rank_peaks(dist)) / one["statistics"]["peak_resident_bytes"]
        print(f"| {n} | {n * per_rank:,} | {int(one['statistics']['requests']):,} | {wall[f'weak-{n}-one']:.1f} | "
              f"{wall[f'weak-{n}-ranks']:.1f} | {base / wall[f'weak-{n}-ranks']:.2f} | {peak:.2f} | "
              f"{'yes' if same_output(runs, f'weak-{n}-one', f'weak-{n}-ranks') else 'NO'} |")
    print("\nEfficiency: the one-process time of one rank's share over the N ranks' time on N shares; "
          f"wall times are medians of {len(next(iter(times.values())))} runs.\n")

    print("### Strong scaling: %d accounts, one thread per rank\n" % strong)
    one = load(runs, "strong-one")
    print("| ranks | wall (s) | speed-up over one process | peak per rank (MB) | max / one process | same output |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| one process | {wall['strong-one']:.1f} | 1.00 | {mb(one['statistics']['peak_resident_bytes'])} | 1.00 | |")
    for n in ranks:
        d = load(runs, f"strong-{n}-ranks")
        peaks = rank_peaks(d)
        print(f"| {n} | {wall[f'strong-{n}-ranks']:.1f} | {wall['strong-one'] / wall[f'strong-{n}-ranks']:.2f} | "
              f"{' / '.join(mb(p) for p in peaks)} | {max(peaks) / one['statistics']['peak_resident_bytes']:.2f} | "
              f"{'yes' if same_output(runs, 'strong-one', f'strong-{n}-ranks') else 'NO'} |")

    print("\n### Time per stage (s) and bytes exchanged per stage, strong scaling\n")
    names = ["strong-one"] + [f"strong-{n}-ranks" for n in ranks]
    print("| stage | " + " | ".join(["one process"] + [f"{n} ranks" for n in ranks]) + " |")
    print("| --- " * (len(names) + 1) + "|")
    reports = [load(runs, n) for n in names]
    for stage in STAGES:
        cells = [f"{r['stage_seconds'].get(stage, 0):.2f}" if stage in r["stage_seconds"] else "" for r in reports]
        if any(cells):
            print(f"| {stage} | " + " | ".join(cells) + " |")
    requests = one["statistics"]["requests"]
    for stage in EXCHANGED:
        cells = [""]
        for r in reports[1:]:
            b = r["statistics"].get(f"exchanged_bytes.{stage}")
            cells.append("" if b is None else f"{mb(b)} MB ({b / requests:,.0f} B/request)")
        print(f"| sent: {stage} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
