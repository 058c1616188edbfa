"""The Python package against the command and under bad input, as a researcher meets it.

Run by ctest (Python.Package) with PYTHONPATH holding the build's python/ directory and
RINGSCAN_CLI the build's command; `pytest python/tests` after `pip install .` runs the same
tests, the command ones only when RINGSCAN_CLI is set.
"""

import json
import os
import subprocess
import threading

import numpy as np
import pytest

import ringscan

CLI = os.environ.get("RINGSCAN_CLI")


@pytest.fixture(scope="module")
def world():
    return ringscan.generate(accounts=1500, dim=32, seed=5, threads=2)


def arrays(data):
    return dict(account=data["account"], embedding=data["embedding"], time=data["time"],
                features=data["features"], feature_names=data["feature_names"],
                account_ids=data["account_ids"], categorical_features=data["categorical_features"])


def rings_by_command(path, tmp_path):
    """The rings of `ringscan detect` on the file at path, from its JSON report."""
    report = tmp_path / "report.json"
    subprocess.run([CLI, "detect", "-q", str(path), "-o", str(tmp_path / "out.h5"), "--report", str(report),
                    "--threads", "2"], check=True, capture_output=True)
    return json.loads(report.read_text())["rings"]


def with_infrastructure(data):
    return dict(arrays(data), infra=data["infra"], infra_names=data["infra_names"], payment=data["payment"],
                created=data["created"])


@pytest.fixture(scope="module")
def infra_world():
    return ringscan.generate(accounts=1500, dim=32, seed=8, times=False, infrastructure=True, threads=2)


def test_detect_weighs_infrastructure_tokens_and_lists_what_rings_share(infra_world):
    result = ringscan.detect(**with_infrastructure(infra_world), threads=2)
    assert not any("infrastructure evidence off" in note for note in result.notes)
    assert result.statistics["shared_infrastructure_tokens"] > 0
    metrics = ringscan.evaluate(result, infra_world["label"], account_ids=infra_world["account_ids"])
    assert metrics["account_precision"] >= 0.99
    kinds = {token["kind"] for ring in result.rings for token in ring["shared_tokens"]}
    assert kinds and kinds <= {"ip24", "asn", "client_fingerprint", "payment"}
    for ring in result.rings:
        if ring["sign_up"] is not None:
            assert ring["sign_up"][0] <= ring["sign_up"][1]


def test_an_allowlist_keeps_the_users_of_its_tokens_out_of_every_ring(infra_world, tmp_path):
    arrays_in = with_infrastructure(infra_world)
    plain = ringscan.detect(**arrays_in, threads=2)
    token = plain.rings[0]["shared_tokens"][0]
    kind = list(infra_world["infra_names"]).index(token["kind"]) if token["kind"] != "payment" else None
    if kind is None:
        users = set(infra_world["account_ids"][infra_world["payment"] == token["token"]])
    else:
        users = set(infra_world["account"][infra_world["infra"][:, kind] == token["token"]])
    assert any(plain.ring[i] >= 0 for i, a in enumerate(plain.account_id) if a in users)
    listed = tmp_path / "allow.txt"
    listed.write_text(f"# known good\n{token['kind']}:{token['token']}\n")
    for allow in ({"tokens": [(token["kind"], token["token"])]}, listed, str(listed)):
        allowed = ringscan.detect(**arrays_in, allow=allow, threads=2)
        assert all(allowed.ring[i] == -1 for i, a in enumerate(allowed.account_id) if a in users)
        assert allowed.statistics["allowed_accounts"] >= len(users)
    with pytest.raises(ringscan.InvalidInputError, match="unknown key 'ips'"):
        ringscan.detect(**arrays_in, allow={"ips": [1]}, threads=2)


def test_seeds_mark_the_ring_that_holds_them(infra_world, tmp_path):
    arrays_in = with_infrastructure(infra_world)
    plain = ringscan.detect(**arrays_in, threads=2)
    known = [int(a) for a in plain.rings[0]["members"][:2]]
    listed = tmp_path / "seeds.txt"
    listed.write_text("\n".join(str(a) for a in known) + "\n")
    for seeds in (known, np.array(known), listed):
        result = ringscan.detect(**arrays_in, seeds=seeds, threads=2)
        holding = [r for r in result.rings if set(known) & set(int(a) for a in r["members"])]
        assert len(holding) == 1 and holding[0]["seeds"] == 2
        assert all(r["seeds"] == 0 for r in result.rings if r is not holding[0])
        assert result.statistics["seed_accounts"] == 2


def test_indicators_of_a_run_flag_the_same_rings_in_another(tmp_path):
    first = ringscan.generate(accounts=1500, dim=32, seed=31, operator_seed=90, infrastructure=True, threads=2)
    second = ringscan.generate(accounts=1500, dim=32, seed=32, operator_seed=90, infrastructure=True, threads=2)
    written = tmp_path / "rings.indicators.json"
    plain = ringscan.detect(**with_infrastructure(first), indicators_out=written, threads=2)
    assert plain.indicator_ring is None
    assert json.loads(written.read_text())["format"] == "ringscan-indicators"
    matched = ringscan.detect(**with_infrastructure(second), indicators_in=written, threads=2)
    assert (matched.account_id == second["account_ids"]).all()
    members = second["label"] >= 0
    flagged = matched.indicator_ring >= 0
    assert flagged[members].mean() >= 0.9
    assert not flagged[~members].any()
    assert (matched.indicator_prompt_hits[flagged] >= 1).all()
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ringscan.InvalidInputError, match="indicators"):
        ringscan.detect(**with_infrastructure(second), indicators_in=tmp_path / "bad.json", threads=2)


@pytest.mark.parametrize("change, message", [
    (lambda a: dict(a, infra=a["infra"][:-1]), "infra: .* rows, expected"),
    (lambda a: dict(a, infra=a["infra"].astype(np.float64)), "infra: expected integers"),
    (lambda a: dict(a, infra_names=["ip24"]), "infra_names: 1 names for 3 columns"),
    (lambda a: dict(a, infra_names=["a", "a", "b"]), "infra_names: a name appears twice"),
    (lambda a: dict(a, created=np.where(np.arange(a["created"].shape[0]) == 4, -1, a["created"])),
     "created: entry 4: sign-up time -1 is negative"),
    (lambda a: dict(a, payment=a["payment"][:-1]), "payment"),
    (lambda a: dict(a, account_ids=None, features=None, feature_names=None, categorical_features=()),
     "payment: given without account_ids"),
])
def test_bad_infrastructure_arrays_raise_a_clear_value_error(infra_world, change, message):
    with pytest.raises(ringscan.InvalidInputError, match=message):
        ringscan.detect(**change(with_infrastructure(infra_world)), threads=2)


@pytest.mark.skipif(CLI is None, reason="RINGSCAN_CLI is not set: no command to compare with")
def test_infrastructure_through_python_and_through_a_file_gives_the_same_rings(tmp_path):
    path = tmp_path / "infra.h5"
    ringscan.generate(str(path), accounts=1500, dim=32, seed=8, times=False, infrastructure=True, threads=2)
    by_command = rings_by_command(path, tmp_path)
    result = ringscan.detect(**with_infrastructure(ringscan.load(str(path))), threads=2)
    assert len(result.rings) == len(by_command) > 0
    for mine, theirs in zip(result.rings, by_command):
        assert list(mine["members"]) == theirs["members"]
        assert [(t["kind"], t["token"]) for t in mine["shared_tokens"]] == \
            [(t["kind"], t["token"]) for t in theirs["evidence"]["shared_tokens"]]


def test_detect_finds_the_planted_rings_in_generated_arrays(world):
    result = ringscan.detect(**arrays(world), threads=2)
    assert result.backend in ("cpu", "cuda")
    assert len(result.rings) > 0
    assert result.account_id.shape == result.ring.shape == result.ring_score.shape
    metrics = ringscan.evaluate(result, world["label"], account_ids=world["account_ids"])
    assert metrics["ring_recall"] >= 0.9
    assert metrics["account_precision"] >= 0.99
    assert "load" not in result.stage_seconds  # no file was read
    assert result.rings[0]["shared_prompt_groups"] >= 1


@pytest.mark.skipif(CLI is None, reason="RINGSCAN_CLI is not set: no command to compare with")
def test_the_same_data_through_python_and_through_a_file_gives_the_same_rings(tmp_path):
    path = tmp_path / "in.h5"
    assert ringscan.generate(str(path), accounts=1500, dim=32, seed=7, threads=2) is None
    by_command = rings_by_command(path, tmp_path)
    result = ringscan.detect(**arrays(ringscan.load(str(path))), threads=2)
    assert len(result.rings) == len(by_command) > 0
    for mine, theirs in zip(result.rings, by_command):
        assert mine["size"] == theirs["size"]
        assert list(mine["members"]) == theirs["members"]
        # The report prints float32 values at their own precision: equal as float32.
        assert np.float32(mine["score"]) == np.float32(theirs["score"])
        assert np.float32(mine["synchrony"]) == np.float32(theirs["evidence"]["synchrony"])


def test_embeddings_of_any_float_dtype_and_layout_give_the_same_labels(world):
    base = ringscan.detect(world["account"], world["embedding"], time=world["time"], threads=2)
    as_float16 = world["embedding"].astype(np.float16).astype(np.float32)
    half = ringscan.detect(world["account"], as_float16.astype(np.float16), time=world["time"], threads=2)
    exact_half = ringscan.detect(world["account"], as_float16, time=world["time"], threads=2)
    assert np.array_equal(half.ring, exact_half.ring)
    as_float64 = ringscan.detect(world["account"], world["embedding"].astype(np.float64), time=world["time"], threads=2)
    assert np.array_equal(as_float64.ring, base.ring)
    fortran = np.asfortranarray(world["embedding"])
    strided = np.repeat(world["embedding"], 2, axis=1)[:, ::2]
    assert not fortran.flags.c_contiguous and not strided.flags.c_contiguous
    for layout in (fortran, strided):
        assert np.array_equal(ringscan.detect(world["account"], layout, time=world["time"], threads=2).ring, base.ring)


def test_labels_do_not_depend_on_the_order_of_the_requests(world):
    base = ringscan.detect(world["account"], world["embedding"], time=world["time"], threads=2)
    order = np.random.default_rng(3).permutation(world["account"].shape[0])
    shuffled = ringscan.detect(world["account"][order], world["embedding"][order], time=world["time"][order], threads=1)
    assert np.array_equal(base.account_id, shuffled.account_id)
    assert np.array_equal(base.ring, shuffled.ring)
    assert np.array_equal(base.ring_score, shuffled.ring_score)


@pytest.mark.parametrize("change, message", [
    (lambda a: dict(a, embedding=a["embedding"][:, 0]), "two dimensions"),
    (lambda a: dict(a, embedding=a["embedding"][:10]), "rows, expected"),
    (lambda a: dict(a, time=a["time"][:-1]), "time"),
    (lambda a: dict(a, account=a["account"].astype(np.float64)), "integers"),
    (lambda a: dict(a, account=a["account"].reshape(-1, 1)), "one dimension"),
    (lambda a: dict(a, embedding=np.where(np.arange(a["embedding"].shape[0])[:, None] == 7, np.nan, a["embedding"])),
     "row 7 column 0 is not finite"),
    (lambda a: dict(a, features=a["features"][:-1]), "features"),
    (lambda a: dict(a, account_ids=None), "without account_ids"),
    (lambda a: dict(a, account_ids=a["account_ids"][::-1][:-1], features=a["features"][:-1]), "not in account_ids"),
    (lambda a: dict(a, feature_names=["x"]), "feature_names"),
    (lambda a: dict(a, embedding=a["embedding"].astype(str)), "numbers"),
])
def test_bad_arrays_raise_a_clear_value_error(world, change, message):
    with pytest.raises(ValueError, match=message) as raised:
        ringscan.detect(**change(arrays(world)), threads=2)
    assert isinstance(raised.value, ringscan.Error)


@pytest.mark.parametrize("options, message", [
    (dict(duplicate_similarity=float("nan")), "--duplicate-similarity"),
    (dict(min_ring_size=0), "--min-ring-size"),
    (dict(false_edges=0), "--false-edges"),
    (dict(device="gpu"), "device"),
    (dict(no_such_option=1), "unknown option"),
])
def test_bad_options_raise_a_value_error_naming_the_option(world, options, message):
    with pytest.raises(ringscan.InvalidInputError, match=message):
        ringscan.detect(world["account"], world["embedding"], **options)


def test_a_job_over_its_memory_budget_raises_memory_error(world):
    with pytest.raises(MemoryError, match="memory budget") as raised:
        ringscan.detect(world["account"], world["embedding"], memory_budget="1M")
    assert isinstance(raised.value, ringscan.MemoryBudgetError)
    assert isinstance(raised.value, ringscan.Error)


def test_the_gil_is_released_while_the_library_runs():
    data = ringscan.generate(accounts=4000, dim=64, seed=11, threads=2)
    ticks = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks[0] += 1

    counter = threading.Thread(target=count)
    counter.start()
    try:
        before = ticks[0]
        ringscan.detect(data["account"], data["embedding"], time=data["time"], threads=1)
        during = ticks[0] - before
    finally:
        stop.set()
        counter.join()
    # With the GIL held for the whole call, the counting thread could not run at all.
    assert during > 1000, during


def test_progress_reaches_a_callback_and_its_exception_comes_out(world):
    seen = []
    ringscan.detect(world["account"], world["embedding"], threads=2,
                    progress=lambda stage, done, total: seen.append(stage))
    assert "request_index" in seen or "order" in seen, seen

    def failing(stage, done, total):
        raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):
        ringscan.detect(world["account"], world["embedding"], threads=2, progress=failing)


def test_ring_detector_follows_the_estimator_conventions(world):
    detector = ringscan.RingDetector(min_ring_size=4)
    assert detector.get_params()["min_ring_size"] == 4
    assert detector.set_params(false_edges=5.0) is detector
    labels = detector.fit_predict(world["account"], world["embedding"], time=world["time"])
    assert np.array_equal(labels, detector.labels_)
    assert detector.account_ids_.shape == labels.shape
    assert all(ring["size"] >= 4 for ring in detector.detection_.rings)
    with pytest.raises(ValueError):
        detector.set_params(nonsense=1)


def test_load_reads_what_generate_wrote(tmp_path):
    path = tmp_path / "in.h5"
    ringscan.generate(str(path), accounts=300, dim=16, seed=2)
    data = ringscan.load(str(path), labels=True)
    assert data["embedding"].shape[1] == 16
    assert data["account_ids"].shape == data["label"].shape
    with pytest.raises(ringscan.InvalidInputError, match="missing.h5"):
        ringscan.load(str(tmp_path / "missing.h5"))


def graphml_structure_errors(path):
    """What the GraphML 1.0 schema requires of the elements ringscan writes, checked by hand
    (the schema file itself is not available offline): the namespace, keys before the graph,
    key domains and types from the schema's enumerations, unique ids, edges between declared
    nodes, data naming a key declared for its element, values of the key's type."""
    import xml.etree.ElementTree as ET

    ns = "{http://graphml.graphdrawing.org/xmlns}"
    root = ET.parse(path).getroot()
    errors = []
    if root.tag != ns + "graphml":
        return [f"root element {root.tag}"]
    children = [c.tag for c in root]
    if children != sorted(children, key=lambda t: t != ns + "key") or children.count(ns + "graph") != 1:
        errors.append(f"expected key* graph, found {children}")
    keys = {}
    for k in root.findall(ns + "key"):
        if k.get("id") in keys:
            errors.append(f"key {k.get('id')} declared twice")
        if k.get("for", "all") not in {"all", "graphml", "graph", "node", "edge", "hyperedge", "port", "endpoint"}:
            errors.append(f"key {k.get('id')}: for={k.get('for')}")
        if k.get("attr.type") not in {"boolean", "int", "long", "float", "double", "string"}:
            errors.append(f"key {k.get('id')}: attr.type={k.get('attr.type')}")
        keys[k.get("id")] = (k.get("for", "all"), k.get("attr.type"))
    graph = root.find(ns + "graph")
    if graph.get("edgedefault") not in {"directed", "undirected"}:
        errors.append(f"edgedefault={graph.get('edgedefault')}")
    nodes = [n.get("id") for n in graph.findall(ns + "node")]
    if len(set(nodes)) != len(nodes) or None in nodes:
        errors.append("node ids missing or repeated")
    parse = {"boolean": lambda v: v in ("true", "false") or int("x"), "int": int, "long": int,
             "float": float, "double": float, "string": str}
    for element in graph:
        kind = element.tag[len(ns):]
        if kind not in {"node", "edge", "data"}:
            errors.append(f"unexpected <{kind}> in the graph")
        if kind == "edge" and not (element.get("source") in nodes and element.get("target") in nodes):
            errors.append(f"edge {element.get('source')}-{element.get('target')} between undeclared nodes")
        for data in element.findall(ns + "data"):
            domain, kind_of_value = keys.get(data.get("key"), (None, None))
            if domain not in (kind, "all"):
                errors.append(f"<{kind}> holds data of key {data.get('key')} (for={domain})")
                continue
            try:
                parse.get(kind_of_value, str)(data.text or "")  # a key of no known type is reported above
            except ValueError:
                errors.append(f"key {data.get('key')}: {data.text!r} is not a {kind_of_value}")
    return errors


@pytest.mark.skipif(CLI is None, reason="RINGSCAN_CLI is not set: no command to export with")
def test_the_exported_graphml_loads_with_networkx_and_holds_every_ring_and_its_evidence(tmp_path):
    import networkx  # a test requirement (scripts/python-env.sh)

    path = tmp_path / "in.h5"
    ringscan.generate(str(path), accounts=1500, dim=32, seed=7, infrastructure=True, threads=2)
    rings = rings_by_command(path, tmp_path)
    assert rings
    graphml = tmp_path / "rings.graphml"
    subprocess.run([CLI, "export", "-q", str(tmp_path / "out.h5"), "--input", str(path), "-o", str(graphml)],
                   check=True, capture_output=True)
    assert graphml_structure_errors(graphml) == []
    graph = networkx.read_graphml(str(graphml))
    ring_of = {int(m): r["id"] for r in rings for m in r["members"]}
    assert {int(graph.nodes[n]["account"]) for n in graph.nodes} == set(ring_of)
    for n in graph.nodes:
        assert graph.nodes[n]["ring"] == ring_of[int(graph.nodes[n]["account"])]
        assert "temperature" in graph.nodes[n]  # a behaviour feature of the input
    assert graph.number_of_edges() > 0
    for a, b, e in graph.edges(data=True):
        assert graph.nodes[a]["ring"] == graph.nodes[b]["ring"]
        assert e["strongest"] in {"shared_prompts", "synchrony", "behaviour", "infrastructure"}
        assert e[e["strongest"]] == max(e[s] for s in ("shared_prompts", "synchrony", "behaviour", "infrastructure"))
    # Every ring comes with the evidence between its members.
    for r in rings:
        members = [n for n in graph.nodes if graph.nodes[n]["ring"] == r["id"]]
        assert graph.subgraph(members).number_of_edges() > 0, r["id"]
