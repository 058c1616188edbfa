"""An experiment with the Python package: how the edge threshold trades recall for precision.

Generates traffic with planted rings, sweeps `false_edges` (the expected edges between
independent accounts per million candidate pairs, which sets the evidence an edge needs),
and plots ring recall, account recall and account precision against it. The defaults were
chosen on other seeds than the one used here.

    python examples/notebook.py [--accounts N] [--seed S] [--out sweep.png]

Needs the `ringscan` package (pip install .) and matplotlib; runs without a display.
"""

import argparse

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

import ringscan  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default="false-edges-sweep.png")
    args = parser.parse_args()

    # Light rings (2-5 requests per member): a regime where the threshold matters.
    data = ringscan.generate(accounts=args.accounts, dim=64, seed=args.seed, light_rings=True)
    arrays = dict(time=data["time"], features=data["features"], feature_names=data["feature_names"],
                  account_ids=data["account_ids"])
    detector = ringscan.RingDetector()
    sweep = [0.01, 0.1, 1, 10, 100, 1000, 10000, 100000]
    rows = []
    for false_edges in sweep:
        detector.set_params(false_edges=false_edges).fit(data["account"], data["embedding"], **arrays)
        m = ringscan.evaluate(detector.detection_, data["label"], account_ids=data["account_ids"])
        rows.append((false_edges, m["ring_recall"], m["account_recall"], m["account_precision"]))
        print(f"false_edges {false_edges:>8}: ring recall {m['ring_recall']:.2f}, account recall "
              f"{m['account_recall']:.3f}, account precision {m['account_precision']:.3f}, "
              f"{len(detector.detection_.rings)} rings")

    fig, ax = plt.subplots(figsize=(6, 4))
    for column, label in ((1, "ring recall"), (2, "account recall"), (3, "account precision")):
        ax.plot([r[0] for r in rows], [r[column] for r in rows], marker="o", label=label)
    ax.axvline(ringscan.DETECT_DEFAULTS["false_edges"], color="grey", linestyle=":", label="default")
    ax.set_xscale("log")
    ax.set_xlabel("false edges per million candidate pairs (--false-edges)")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{args.accounts} generated accounts, light rings, seed {args.seed}")
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
