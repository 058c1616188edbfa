#!/usr/bin/env python3
"""Figures of scripts/device-check.sh from the JSON reports of `ringscan detect --report`.

  device_report.py stages REPORT.json [--target SECONDS]
      seconds per stage and in all; each device join's inner-product rate against the H200's
      datasheet peak; the most a device could give this detection were every device stage
      free (its host time: loading and the order stage's host part); with --target, whether
      the detection met it.
  device_report.py speedup CPU.json CUDA.json [--target X]
      the CUDA run's speedup over the CPU run: in all, without loading and ordering (load and
      order), and stage by stage; the most any device could give in all with the host time
      as the CUDA run measured it; with --target, whether the total met it.

Runs anywhere (no GPU needed): scripts/device-check.sh calls it on the device machine.
"""
import argparse
import json
import sys

# Dense datasheet peaks of the H200 SXM: the request index runs its GEMMs in fp16 (tensor
# cores, fp32 accumulation), the account index in fp32.
PEAKS = (("request_index", 990e12, "fp16"), ("account_index", 67e12, "fp32"))
# Loading and ordering: both backends load on the host with the same code; the order stage's
# sort and unit rows run on the device in a CUDA run, the rest of it (statistic
# order_host_seconds) on the host.
HOST_STAGES = ("load", "order")


def host_seconds(report):
    """Seconds of a detection that no device takes over: loading and the order's host part."""
    st, s = report["stage_seconds"], report.get("statistics", {})
    return st.get("load", 0.0) + s.get("order_host_seconds", st.get("order", 0.0))


def read(path):
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"device_report.py: {path}: {e}")
    if "stage_seconds" not in report:
        sys.exit(f"device_report.py: {path}: no stage_seconds (not a detect report)")
    return report


def stages(args):
    report = read(args.report)
    st, s = report["stage_seconds"], report.get("statistics", {})
    total = sum(st.values())
    print("stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in st.items()) + f"; total {total:.2f} s")
    for stage, peak, kind in PEAKS:
        flop, sec = s.get(stage + "_device_flop"), s.get(stage + "_device_seconds")
        if flop and sec:
            print(f"{stage}: {flop:.3e} FLOP in {sec:.2f} s of device search = "
                  f"{flop / sec / 1e12:.1f} TFLOP/s, {100 * flop / sec / peak:.1f}% of the {kind} peak")
    host = host_seconds(report)
    print(f"ceiling: {total / host:.1f}x were every device stage free (host part {host:.2f} s: "
          f"load {st.get('load', 0.0):.2f} s, the order's host part "
          f"{s.get('order_host_seconds', st.get('order', 0.0)):.2f} s)" if host > 0 else "ceiling: n/a")
    if args.target is not None:
        verdict = "met" if total < args.target else "NOT met"
        print(f"target: under {args.target:g} s end to end: {verdict} ({total:.2f} s)")


def speedup(args):
    cpu, cuda = read(args.cpu), read(args.cuda)
    a, b = cpu["stage_seconds"], cuda["stage_seconds"]
    if cpu.get("backend") == cuda.get("backend"):
        print(f"warning: both reports are of the {cpu.get('backend')} backend")

    def ratio(x, y):
        return f"{x / y:.1f}x" if y > 0 else "n/a"

    total_a, total_b = sum(a.values()), sum(b.values())
    rest_a = sum(v for k, v in a.items() if k not in HOST_STAGES)
    rest_b = sum(v for k, v in b.items() if k not in HOST_STAGES)
    print(f"{cpu.get('backend')}: {total_a:.2f} s; {cuda.get('backend')}: {total_b:.2f} s; "
          f"speedup {ratio(total_a, total_b)} in all")
    print(f"without {' and '.join(HOST_STAGES)} (host code on both): {rest_a:.2f} s against "
          f"{rest_b:.2f} s, speedup {ratio(rest_a, rest_b)}")
    print("by stage: " + ", ".join(f"{k} {ratio(v, b[k])}" for k, v in a.items() if k in b))
    # Amdahl: were every device stage free, the CUDA run would still take its host part.
    host_b = host_seconds(cuda)
    print(f"ceiling: {ratio(total_a, host_b)} in all were the device stages free "
          f"(loading and the order's host part took {host_b:.2f} s of the {cuda.get('backend')} run)")
    if args.target is not None:
        verdict = "met" if total_b > 0 and total_a / total_b >= args.target else "NOT met"
        print(f"target: a speedup of {args.target:g}x in all: {verdict}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("stages")
    p.add_argument("report")
    p.add_argument("--target", type=float)
    p.set_defaults(run=stages)
    p = sub.add_parser("speedup")
    p.add_argument("cpu")
    p.add_argument("cuda")
    p.add_argument("--target", type=float)
    p.set_defaults(run=speedup)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
