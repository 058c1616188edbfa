#!/usr/bin/env python3
"""Peers of ringscan: what a practitioner would otherwise run to find account rings.

One method per process (run_peers.sh measures each with /usr/bin/time):

  dbscan          scikit-learn DBSCAN on per-account profiles (PCA to 64 dims), eps sweep
  hdbscan         scikit-learn HDBSCAN on the same profiles, min_cluster_size sweep
  knn_leiden      FAISS kNN graph (k = 15, inner product on normalised profiles) + Leiden
                  (RBConfigurationVertexPartition), resolution sweep
  dup_components  near-duplicate-prompt co-occurrence graph (FAISS kNN over the normalised
                  request embeddings, cosine >= 0.9, different accounts) + connected
                  components, sweep of the near-duplicate pairs an account pair must share

Each method sweeps one parameter and keeps the value with the highest account-level F1 of
ring membership against /accounts/label: an oracle selection that ringscan does not get.
The kept result is written in ringscan's output schema (for `ringscan evaluate`), the
sweep to a JSON file.

`peers.py --summarise OUT_DIR` assembles OUT_DIR/peers.csv and OUT_DIR/peers.md from the
timings file, the *.eval.json and the *.sweep.json files that run_peers.sh leaves there.
"""

import argparse
import csv
import json
import statistics
import os
import platform
import sys
import time

METHODS = ("dbscan", "hdbscan", "knn_leiden", "dup_components")
MIN_RING_SIZE = 3          # clusters of at least this many accounts are reported as rings
PCA_DIM = 64               # DBSCAN / HDBSCAN run on profiles reduced to this width
DBSCAN_MIN_SAMPLES = 5     # scikit-learn's default
DBSCAN_EPS_QUANTILES = (0.01, 0.02, 0.05, 0.10, 0.20)
HDBSCAN_MIN_CLUSTER_SIZES = (3, 5, 10, 20)
LEIDEN_K = 15
LEIDEN_RESOLUTIONS = (1.0, 3.0, 10.0, 30.0, 100.0)
DUP_SIMILARITY = 0.9
DUP_NEIGHBOURS = 32        # neighbours searched per request (itself included)
DUP_MIN_SHARED = (1, 2, 3)
DUP_EXACT_REQUESTS = 20000  # exact (flat) request search up to this many requests, IVF above
DUP_NPROBE = 8
DUP_KMEANS_ITERATIONS = 10
READ_CHUNK_ROWS = 65536


def log(msg):
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- input

class Data:
    """What the peers read: account ids, request -> account row, embeddings, features."""


def load(path, keep_embeddings, want_profiles):
    import h5py
    import numpy as np
    import scipy.sparse as sp

    d = Data()
    with h5py.File(path, "r") as f:
        req_acc = f["/requests/account"][...].astype(np.int64, copy=False)
        if "/accounts/id" in f:
            ids = f["/accounts/id"][...].astype(np.int64, copy=False)
        else:
            ids = np.unique(req_acc)
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        if len(sorted_ids) > 1 and np.any(sorted_ids[1:] == sorted_ids[:-1]):
            sys.exit(f"peers.py: {path}: /accounts/id has duplicate ids")
        pos = np.searchsorted(sorted_ids, req_acc)
        pos = np.minimum(pos, len(sorted_ids) - 1)
        if len(req_acc) and (len(sorted_ids) == 0 or np.any(sorted_ids[pos] != req_acc)):
            sys.exit(f"peers.py: {path}: /requests/account names accounts not in /accounts/id")
        row = order[pos]                      # account row (input order) of each request
        del pos
        d.ids = ids
        d.request_row = row
        a = len(ids)
        d.label = f["/accounts/label"][...].astype(np.int64) if "/accounts/label" in f else None
        d.features = (f["/accounts/features"][...].astype(np.float64)
                      if "/accounts/features" in f else np.zeros((a, 0)))
        emb = f["/requests/embedding"]
        r, dim = emb.shape
        d.requests, d.dim = r, dim
        d.embeddings = np.empty((r, dim), np.float32) if keep_embeddings else None
        sums = np.zeros((a, dim), np.float64) if want_profiles else None
        for first in range(0, r, READ_CHUNK_ROWS):
            last = min(r, first + READ_CHUNK_ROWS)
            x = emb[first:last].astype(np.float32)
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            x /= np.maximum(norms, 1e-12)      # zero rows stay zero
            if keep_embeddings:
                d.embeddings[first:last] = x
            if want_profiles:
                n = last - first
                m = sp.csr_matrix((np.ones(n, np.float32), (row[first:last], np.arange(n))),
                                  shape=(a, n))
                sums += m @ x
    if want_profiles:
        counts = np.bincount(row, minlength=a).astype(np.float64)
        d.content = sums / np.maximum(counts, 1.0)[:, None]    # no requests: zero block
        d.request_counts = counts
    return d


def profiles(d):
    """Per account: [mean normalised embedding | z-scored behaviour], blocks weighted alike.

    Each block is divided by the root of its mean squared row norm, so that both
    contribute the same expected squared distance."""
    import numpy as np

    def scaled(block):
        if block.shape[1] == 0:
            return block
        rms = np.sqrt(np.mean(np.sum(block * block, axis=1)))
        return block / rms if rms > 0 else block

    feats = d.features
    if feats.shape[1]:
        mu = feats.mean(axis=0)
        sd = feats.std(axis=0)
        sd[sd == 0] = 1.0
        feats = (feats - mu) / sd
    return np.hstack([scaled(d.content), scaled(feats)]).astype(np.float32)


# -------------------------------------------------------------------------- scoring

def compact(labels):
    """Renumbers clusters 0.. by decreasing size (ties by first account); -1 stays noise;
    singletons become noise."""
    import numpy as np

    labels = np.asarray(labels, np.int64)
    out = np.full(len(labels), -1, np.int64)
    valid = labels >= 0
    if not valid.any():
        return out
    uniq, first, inverse, counts = np.unique(labels[valid], return_index=True,
                                             return_inverse=True, return_counts=True)
    keep = counts >= 2
    rank = np.lexsort((first, -counts))           # by size desc, then first appearance
    new_id = np.full(len(uniq), -1, np.int64)
    kept = [u for u in rank if keep[u]]
    new_id[kept] = np.arange(len(kept))
    out[valid] = new_id[inverse]
    return out


def rings_of(cluster):
    import numpy as np

    ring = np.full(len(cluster), -1, np.int64)
    valid = cluster >= 0
    if valid.any():
        sizes = np.bincount(cluster[valid])
        big = sizes >= MIN_RING_SIZE
        ring[valid] = np.where(big[cluster[valid]], cluster[valid], -1)
    return ring


def score(ring, label):
    """Account-level precision, recall and F1 of ring membership (the oracle)."""
    import numpy as np

    pred = ring >= 0
    true = label >= 0
    tp = int(np.sum(pred & true))
    p = tp / int(pred.sum()) if pred.any() else 1.0
    r = tp / int(true.sum()) if true.any() else 1.0
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return p, r, f1


class Sweep:
    def __init__(self, method, parameter, label):
        self.method, self.parameter, self.label = method, parameter, label
        self.rows, self.best, self.best_cluster, self.best_f1 = [], None, None, None
        self.shared = {}
        self.notes = []

    def add(self, value, seconds, cluster, **extra):
        import numpy as np

        cluster = compact(cluster)
        ring = rings_of(cluster)
        if self.label is not None:
            p, r, f1 = score(ring, self.label)
        else:
            p = r = f1 = float("nan")

        def r4(v):
            return None if v != v else round(v, 4)    # NaN (no labels): null in the JSON

        n_rings = len(np.unique(ring[ring >= 0]))
        row = {"value": value, "seconds": round(seconds, 3), "f1": r4(f1),
               "account_precision": r4(p), "account_recall": r4(r),
               "reported_rings": n_rings, "accounts_in_rings": int(np.sum(ring >= 0)),
               "clusters": int(cluster.max() + 1) if (cluster >= 0).any() else 0}
        row.update(extra)
        self.rows.append(row)
        log(f"{self.method} {self.parameter}={value}: {seconds:.2f} s, F1 {f1:.4f} "
            f"(P {p:.3f} R {r:.3f}), {n_rings} rings")
        if self.best is None or f1 > self.best_f1:     # first of equals is kept
            self.best, self.best_cluster, self.best_f1 = row, cluster, f1

    def json(self):
        return {"method": self.method, "parameter": self.parameter,
                "selection": "highest account-level F1 of ring membership against "
                             "/accounts/label (oracle: uses the ground truth)",
                "best_value": self.best["value"] if self.best else None,
                "shared_seconds": {k: round(v, 3) for k, v in self.shared.items()},
                "notes": self.notes, "sweep": self.rows}


# -------------------------------------------------------------------------- methods

def pca_profiles(d, sw, threads):
    from sklearn.decomposition import PCA

    x = profiles(d)
    if x.shape[1] > PCA_DIM and x.shape[0] > PCA_DIM:
        t = time.perf_counter()
        x = PCA(n_components=PCA_DIM, svd_solver="covariance_eigh").fit_transform(x)
        sw.shared["pca"] = time.perf_counter() - t
        sw.notes.append(f"profiles ({d.dim} content + {d.features.shape[1]} behaviour dims) "
                        f"reduced to {PCA_DIM} dims by PCA")
    return x.astype("float32")


def run_dbscan(d, sw, threads):
    import numpy as np
    from sklearn.cluster import DBSCAN
    from sklearn.neighbors import NearestNeighbors

    x = pca_profiles(d, sw, threads)
    t = time.perf_counter()
    # eps grid from the k-distance distribution (no labels): the distance of each account to
    # its (min_samples - 1)-th neighbour, at a few low quantiles (rings are a few % of accounts).
    nn = NearestNeighbors(n_neighbors=DBSCAN_MIN_SAMPLES, algorithm="brute", n_jobs=threads)
    kdist = nn.fit(x).kneighbors(x)[0][:, -1]
    grid = [float(np.quantile(kdist, q)) for q in DBSCAN_EPS_QUANTILES]
    sw.shared["k_distance"] = time.perf_counter() - t
    sw.notes.append(f"min_samples = {DBSCAN_MIN_SAMPLES}; eps = quantiles "
                    f"{list(DBSCAN_EPS_QUANTILES)} of the distance to the "
                    f"{DBSCAN_MIN_SAMPLES - 1}th neighbour; algorithm = brute")
    for q, eps in zip(DBSCAN_EPS_QUANTILES, grid):
        t = time.perf_counter()
        lab = DBSCAN(eps=eps, min_samples=DBSCAN_MIN_SAMPLES, algorithm="brute",
                     n_jobs=threads).fit_predict(x)
        sw.add(round(eps, 5), time.perf_counter() - t, lab, quantile=q)


def run_hdbscan(d, sw, threads):
    from sklearn.cluster import HDBSCAN

    x = pca_profiles(d, sw, threads)
    sw.notes.append("min_samples = min_cluster_size (scikit-learn default); algorithm = auto")
    for m in HDBSCAN_MIN_CLUSTER_SIZES:
        t = time.perf_counter()
        lab = HDBSCAN(min_cluster_size=m, n_jobs=threads, copy=True).fit_predict(x)
        sw.add(m, time.perf_counter() - t, lab)


def run_knn_leiden(d, sw, threads):
    import faiss
    import igraph as ig
    import leidenalg
    import numpy as np

    t = time.perf_counter()
    x = profiles(d)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    x = np.ascontiguousarray(x, np.float32)
    a = len(x)
    k = min(LEIDEN_K + 1, a)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    sims, nbrs = index.search(x, k)
    src = np.repeat(np.arange(a), k)
    dst, w = nbrs.ravel(), sims.ravel()
    keep = (dst >= 0) & (dst != src) & (w > 0)     # Leiden needs positive weights
    src, dst, w = src[keep], dst[keep], w[keep]
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    key = lo * a + hi
    key, first = np.unique(key, return_index=True)  # undirected, one edge per pair
    edges = np.stack([key // a, key % a], axis=1)
    weights = w[first].astype(float)
    g = ig.Graph(n=a, edges=edges.tolist(), directed=False)
    g.es["weight"] = weights.tolist()
    sw.shared["knn_graph"] = time.perf_counter() - t
    sw.notes.append(f"exact kNN (IndexFlatIP), k = {LEIDEN_K}, edge weight = cosine (> 0), "
                    f"{g.ecount()} edges; Leiden seed 0; every account lands in a community")
    for res in LEIDEN_RESOLUTIONS:
        t = time.perf_counter()
        part = leidenalg.find_partition(g, leidenalg.RBConfigurationVertexPartition,
                                        weights="weight", resolution_parameter=res, seed=0)
        sw.add(res, time.perf_counter() - t, np.asarray(part.membership, np.int64))


def run_dup_components(d, sw, threads):
    import faiss
    import numpy as np
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    x, acc = d.embeddings, d.request_row
    r, dim, a = len(x), x.shape[1], len(d.ids)
    k = min(DUP_NEIGHBOURS, r)
    t = time.perf_counter()
    if r <= DUP_EXACT_REQUESTS:
        index = faiss.IndexFlatIP(dim)
        kind = "exact (IndexFlatIP)"
    else:
        nlist = int(min(8192, max(64, 4 * np.sqrt(r))))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = DUP_KMEANS_ITERATIONS
        rng = np.random.default_rng(0)
        sample = x[np.sort(rng.choice(r, min(r, 40 * nlist), replace=False))]
        index.train(sample)
        del sample
        index.nprobe = DUP_NPROBE
        kind = (f"IVF (IndexIVFFlat, nlist {nlist}, nprobe {DUP_NPROBE}, "
                f"k-means {DUP_KMEANS_ITERATIONS} iterations)")
    index.add(x)
    sims, nbrs = index.search(x, k)
    del index
    sw.shared["request_knn"] = time.perf_counter() - t
    t = time.perf_counter()
    q = np.repeat(np.arange(r, dtype=np.int64), k)
    n, s = nbrs.ravel(), sims.ravel()
    del sims, nbrs
    keep = (n >= 0) & (s >= DUP_SIMILARITY)
    q, n = q[keep], n[keep]
    keep = acc[q] != acc[n]
    q, n = q[keep], n[keep]
    pairs = np.unique(np.minimum(q, n) * r + np.maximum(q, n))   # distinct request pairs
    del q, n
    ra, rb = acc[pairs // r], acc[pairs % r]
    akey, shared = np.unique(np.minimum(ra, rb) * a + np.maximum(ra, rb), return_counts=True)
    sw.shared["pair_counting"] = time.perf_counter() - t
    sw.notes.append(f"request search {kind}, {k} neighbours per request (itself included), "
                    f"cosine >= {DUP_SIMILARITY}: {len(pairs)} near-duplicate request pairs "
                    f"across accounts, {len(akey)} account pairs")
    for m in DUP_MIN_SHARED:
        t = time.perf_counter()
        sel = shared >= m
        u, v = akey[sel] // a, akey[sel] % a
        g = sp.coo_matrix((np.ones(len(u), np.int8), (u, v)), shape=(a, a)).tocsr()
        _, lab = connected_components(g, directed=False)
        deg = np.bincount(np.concatenate([u, v]), minlength=a)
        lab = np.where(deg > 0, lab, -1)            # isolated accounts are no cluster
        sw.add(m, time.perf_counter() - t, lab, edges=int(sel.sum()))


# --------------------------------------------------------------------------- output

def write_output(path, d, cluster, method, sweep):
    import h5py
    import numpy as np

    ring = rings_of(cluster)
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)),
                       f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = "ringscan-output"
            f.attrs["schema_version"] = np.int64(1)
            f.attrs["tool"] = f"benchmarks/peers/peers.py --method {method}"
            f.attrs["peer.parameter"] = sweep.parameter
            f.attrs["peer.best_value"] = str(sweep.best["value"])
            g = f.create_group("accounts")
            g.create_dataset("id", data=d.ids.astype(np.int64))
            g.create_dataset("cluster", data=cluster.astype(np.int64))
            g.create_dataset("ring", data=ring)
            g.create_dataset("ring_score", data=np.zeros(len(ring), np.float32))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path, obj):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def run_method(args):
    import numpy as np
    from threadpoolctl import threadpool_limits

    threads = args.threads
    if args.method in ("knn_leiden", "dup_components"):
        import faiss
        faiss.omp_set_num_threads(threads)
    t0 = time.perf_counter()
    with threadpool_limits(limits=threads):
        d = load(args.input, keep_embeddings=args.method == "dup_components",
                 want_profiles=args.method != "dup_components")
        load_s = time.perf_counter() - t0
        log(f"{args.method}: loaded {len(d.ids)} accounts, {d.requests} requests, "
            f"D = {d.dim} in {load_s:.2f} s")
        if d.label is None:
            log("warning: no /accounts/label: the sweep keeps its first value")
        parameter = {"dbscan": "eps", "hdbscan": "min_cluster_size",
                     "knn_leiden": "resolution", "dup_components": "min_shared_pairs"}
        sw = Sweep(args.method, parameter[args.method], d.label)
        sw.shared["load"] = load_s
        globals()["run_" + args.method](d, sw, threads)
    write_output(args.output, d, sw.best_cluster, args.method, sw)
    out = sw.json()
    out.update({"input": os.path.abspath(args.input), "accounts": int(len(d.ids)),
                "requests": int(d.requests), "dim": int(d.dim), "threads": threads,
                "seconds_in_process": round(time.perf_counter() - t0, 3)})
    write_json(args.sweep_json or os.path.splitext(args.output)[0] + ".sweep.json", out)
    log(f"{args.method}: best {sw.parameter} = {sw.best['value']} (F1 {sw.best['f1']}), "
        f"wrote {args.output}")


# ------------------------------------------------------------------------ summarise

def summarise(out_dir):
    """timings.tsv (method, status, wall_s, rss_kb, note) + *.eval.json + *.sweep.json
    -> peers.csv, peers.md."""
    rows = []
    meta = {}
    meta_path = os.path.join(out_dir, "run.json")
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
    # One line per method and run; medians over the runs of each method.
    runs = {}
    with open(os.path.join(out_dir, "timings.tsv")) as f:
        for line in f:
            if not line.strip():
                continue
            method, status, wall, rss, note = (line.rstrip("\n").split("\t") + [""] * 5)[:5]
            r = runs.setdefault(method, {"status": "ok", "wall": [], "rss": [], "note": ""})
            if status != "ok":
                r["status"], r["note"] = status, note
            if wall:
                r["wall"].append(float(wall))
            if rss:
                r["rss"].append(int(rss))
    for method, r in runs.items():
        status, note = r["status"], r["note"]
        wall = f"{statistics.median(r['wall']):.2f}" if r["wall"] else ""
        rss = str(int(statistics.median(r["rss"]))) if r["rss"] else ""
        count = len(r["wall"])
        row = {"method": method, "status": status, "best_value": "", "runs": str(count),
               "wall_s": wall, "peak_rss_mb": "", "ring_recall": "",
               "account_precision": "", "account_recall": "", "ari": "",
               "reported_rings": "", "note": note}
        if rss:
            row["peak_rss_mb"] = f"{int(rss) / 1024:.0f}"
        sweep_path = os.path.join(out_dir, f"{method}.sweep.json")
        if method == "ringscan":
            row["best_value"] = "defaults (no sweep)"
        elif os.path.exists(sweep_path):
            with open(sweep_path) as f2:
                s = json.load(f2)
            row["best_value"] = f"{s['parameter']}={s['best_value']}"
        eval_path = os.path.join(out_dir, f"{method}.eval.json")
        if status == "ok" and os.path.exists(eval_path):
            with open(eval_path) as f2:
                e = json.load(f2)
            row["ring_recall"] = f"{e['ring_recall']:.3f}"
            row["account_precision"] = f"{e['account_precision']:.3f}"
            row["account_recall"] = f"{e['account_recall']:.3f}"
            row["ari"] = f"{e['adjusted_rand_index']:.3f}"
            row["reported_rings"] = str(e["reported_rings"])
            if not meta.get("planted_rings"):
                meta["planted_rings"] = e.get("planted_rings")
        rows.append(row)
    cols = ["method", "best_value", "runs", "wall_s", "peak_rss_mb", "ring_recall",
            "account_precision", "account_recall", "ari", "reported_rings", "status"]
    tmp = os.path.join(out_dir, f".peers.csv.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, os.path.join(out_dir, "peers.csv"))

    heads = ["method", "best sweep value", "runs", "median wall s", "median peak RSS MB", "ring recall",
             "account precision", "account recall", "ARI", "reported rings"]
    lines = [f"# ringscan and its peers", ""]
    if meta:
        lines.append(f"Input `{meta.get('input', '?')}`: {meta.get('accounts', '?')} accounts, "
                     f"{meta.get('requests', '?')} requests, D = {meta.get('dim', '?')}, "
                     f"{meta.get('planted_rings', '?')} planted rings. "
                     f"Threads: {meta.get('threads', '?')}, on {meta.get('cpu', '?')} "
                     f"({meta.get('cores', '?')} cores), {meta.get('date', '')}, "
                     f"load average {meta.get('load_average', '?')} at the start.")
        lines.append("")
    lines.append("| " + " | ".join(heads) + " |")
    lines.append("| " + " | ".join("---" for _ in heads) + " |")
    for r in rows:
        vals = [r["method"], r["best_value"], r["runs"], r["wall_s"], r["peak_rss_mb"], r["ring_recall"],
                r["account_precision"], r["account_recall"], r["ari"], r["reported_rings"]]
        if r["status"] != "ok":
            vals[-1] = f"{r['status']} {r['note']}".strip()
        lines.append("| " + " | ".join(vals) + " |")
    lines += ["",
              "Wall time and peak RSS: `/usr/bin/time -v` of the whole process (load, profiles, "
              "the whole sweep, output). Quality: `ringscan evaluate` of the kept result.",
              "",
              "**Oracle selection**: each peer sweeps one parameter and keeps the value with the "
              "highest account-level F1 of ring membership against the ground truth "
              "(`/accounts/label`); ringscan runs once with its defaults and never sees the "
              "labels. The peers' figures are therefore an upper bound of what they would give "
              "without labels. Per-value details: `NAME.sweep.json`.",
              ""]
    tmp = os.path.join(out_dir, f".peers.md.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, os.path.join(out_dir, "peers.md"))


def run_info(args):
    """Writes OUT_DIR/run.json: input size, threads, machine (for the table header)."""
    import h5py

    with h5py.File(args.input, "r") as f:
        emb = f["/requests/embedding"]
        accounts = (f["/accounts/id"].shape[0] if "/accounts/id" in f else None)
        info = {"input": os.path.abspath(args.input), "requests": int(emb.shape[0]),
                "dim": int(emb.shape[1]), "accounts": accounts}
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info.update({"threads": args.threads, "cpu": cpu, "cores": os.cpu_count(),
                 "load_average": round(os.getloadavg()[0], 2),
                 "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")})
    write_json(os.path.join(args.info, "run.json"), info)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", choices=METHODS)
    ap.add_argument("--input")
    ap.add_argument("--output")
    ap.add_argument("--sweep-json", help="default: OUTPUT with .sweep.json for .h5")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--summarise", metavar="OUT_DIR", help="write OUT_DIR/peers.{csv,md}")
    ap.add_argument("--info", metavar="OUT_DIR", help="write OUT_DIR/run.json for --input")
    args = ap.parse_args()
    if args.summarise:
        summarise(args.summarise)
    elif args.info:
        if not args.input:
            ap.error("--info needs --input")
        run_info(args)
    else:
        if not (args.method and args.input and args.output):
            ap.error("--method, --input and --output are required")
        if args.threads < 1:
            ap.error("--threads must be >= 1")
        run_method(args)


if __name__ == "__main__":
    main()
