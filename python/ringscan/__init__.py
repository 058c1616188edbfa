"""ringscan: coordinated account rings among the users of an LLM API, from numpy arrays.

The same library as the ``ringscan`` command: :func:`detect` runs the whole pipeline on
arrays in memory (request accounts and embeddings, optionally times and per-account behaviour
features), :func:`load` reads an input file, :func:`generate` makes synthetic data with
planted rings and :func:`evaluate` scores a detection against ground truth.
:class:`RingDetector` wraps :func:`detect` in scikit-learn's estimator conventions.

Errors are :class:`Error` (the base), :class:`InvalidInputError` (also a ``ValueError``),
:class:`MemoryBudgetError` and :class:`OutOfMemoryError` (also ``MemoryError``), with the
command's messages.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from . import _ringscan
from ._ringscan import Error, InvalidInputError, MemoryBudgetError, OutOfMemoryError

__all__ = [
    "Detection",
    "Error",
    "InvalidInputError",
    "MemoryBudgetError",
    "OutOfMemoryError",
    "RingDetector",
    "detect",
    "evaluate",
    "generate",
    "load",
    "__version__",
]

__version__: str = _ringscan.backends()["version"]

# detect's options, with the command line's defaults (``ringscan detect --help``).
DETECT_DEFAULTS: Dict[str, Any] = {
    "device": "auto",
    "false_edges": 10.0,
    "duplicate_similarity": 0.9,
    "template_similarity": 0.0,
    "duplicate_neighbours": 24,
    "max_prompt_share": 0.02,
    "time_window": 600,
    "account_neighbours": 16,
    "min_core_degree": 2,
    "merge": True,
    "min_ring_size": 3,
    "ring_threshold": 0.2,
    "report_examples": 3,
    "exact_request_limit": 5000,
    "reduced_dim": 96,
    "exact_account_limit": 5000,
    "allow": None,
    "seeds": None,
    "indicators_out": None,
    "indicators_in": None,
}


def _vector(name: str, values: Any, dtype: type, length: Optional[int] = None) -> np.ndarray:
    """A C-contiguous 1-D array of ``dtype``; a clear error for anything else."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidInputError(f"arrays: {name}: expected one dimension, got shape {array.shape}")
    if dtype is np.int64 and array.size and not np.issubdtype(array.dtype, np.integer):
        raise InvalidInputError(f"arrays: {name}: expected integers, got {array.dtype}")
    if length is not None and array.shape[0] != length:
        raise InvalidInputError(f"arrays: {name}: {array.shape[0]} entries, expected {length}")
    return np.ascontiguousarray(array, dtype=dtype)


def _matrix(name: str, values: Any, rows: Optional[int] = None) -> np.ndarray:
    """A C-contiguous float32 matrix (float16 and float64 converted, any layout copied)."""
    array = np.asarray(values)
    if array.ndim != 2:
        raise InvalidInputError(f"arrays: {name}: expected two dimensions, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise InvalidInputError(f"arrays: {name}: expected numbers, got {array.dtype}")
    if rows is not None and array.shape[0] != rows:
        raise InvalidInputError(f"arrays: {name}: {array.shape[0]} rows, expected {rows}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _progress_callback(progress: Any) -> Optional[Callable[[str, int, int], None]]:
    """None, a callable(stage, done, total), or True for a tqdm bar per stage when installed."""
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    bars: Dict[str, Any] = {}
    lock = threading.Lock()

    def update(stage: str, done: int, total: int) -> None:
        with lock:
            bar = bars.get(stage)
            if bar is None:
                for other in bars.values():
                    other.close()
                bar = bars[stage] = tqdm(total=total or None, desc=stage, leave=False)
            bar.n = done
            bar.refresh()

    return update


@dataclass
class Detection:
    """The result of :func:`detect`: labels in the order of ``account_id``, and the rings.

    ``ring[i]`` is the ring of account ``account_id[i]`` (-1: none), ranked by score (0 is the
    highest); ``rings`` lists each ring's size, score, signals, members and shared-prompt
    examples; ``stage_seconds``, ``statistics``, ``parameters`` and ``notes`` are those of the
    command's output file.
    """

    account_id: np.ndarray
    cluster: np.ndarray
    ring: np.ndarray
    ring_score: np.ndarray
    rings: List[Dict[str, Any]]
    backend: str
    parameters: Dict[str, str] = field(default_factory=dict)
    stage_seconds: Dict[str, float] = field(default_factory=dict)
    statistics: Dict[str, float] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    #: With ``indicators_in``: per account, the indicator ring it matched (-1: none), its
    #: requests near that ring's prompts and its tokens it used; otherwise None.
    indicator_ring: Optional[np.ndarray] = None
    indicator_prompt_hits: Optional[np.ndarray] = None
    indicator_token_hits: Optional[np.ndarray] = None

    def to_pandas(self):
        """The per-account labels as a pandas DataFrame (pandas must be installed)."""
        import pandas as pd

        return pd.DataFrame(
            {"account_id": self.account_id, "cluster": self.cluster, "ring": self.ring, "ring_score": self.ring_score}
        )

    def rings_to_pandas(self):
        """One row per ring with its signals (pandas must be installed)."""
        import pandas as pd

        keys = ["id", "size", "score", "shared_prompt_strength", "shared_prompt_groups", "synchrony",
                "behaviour_tightness", "prompt_diversity", "volume", "internal_edge_weight"]
        return pd.DataFrame([{k: r[k] for k in keys} for r in self.rings], columns=keys)


def detect(
    account: Any,
    embedding: Any,
    time: Any = None,
    features: Any = None,
    feature_names: Optional[Sequence[str]] = None,
    account_ids: Any = None,
    categorical_features: Sequence[str] = (),
    *,
    infra: Any = None,
    infra_names: Optional[Sequence[str]] = None,
    payment: Any = None,
    created: Any = None,
    threads: int = 0,
    memory_budget: Optional[str] = None,
    device_memory_budget: Optional[str] = None,
    progress: Any = None,
    **options: Any,
) -> Detection:
    """Finds coordinated account rings among the requests given as arrays.

    account: int64 [R], the account id of each request.
    embedding: [R, D] prompt embeddings, float16/32/64 in any layout (copied once as float32).
    time: int64 [R] unix seconds, optional (timing evidence).
    features: [A, B] behaviour vector per account, optional; its rows follow ``account_ids``.
    feature_names, categorical_features: the columns' names; categorical columns count only
    when equal.
    account_ids: int64 [A], every account (with or without requests); default: the distinct
    ids of ``account``, ascending.
    infra: int64 [R] or [R, K] hashed infrastructure tokens per request (0: unknown), one
    column per kind, named by ``infra_names`` (e.g. ``ip24``, ``asn``); payment: int64 [A]
    payment instruments, created: int64 [A] sign-up times (0: unknown), both following
    ``account_ids``. All optional (infrastructure evidence).
    threads: CPU threads (0: all); memory_budget, device_memory_budget: e.g. "8G".
    progress: a callable(stage, done, total), or True for tqdm bars when tqdm is installed.
    options: detect's options by their command-line names with underscores (``false_edges``,
    ``duplicate_similarity``, ``min_ring_size``, ``ring_threshold``, ``device``, ...; see
    ``DETECT_DEFAULTS``). ``allow``: an allowlist file, as ``--allow`` reads it, or a dict
    ``{"accounts": [ids], "tokens": [(kind, value)]}``. ``seeds``: a file of account ids known
    to be in rings, as ``--seeds`` reads it, or the ids. ``indicators_out``: a path to write
    every ring's shareable indicators to (docs/indicators.md); ``indicators_in``: a path of
    indicators written elsewhere: the result gains ``indicator_ring`` (int64 [A], -1 = no
    match), ``indicator_prompt_hits`` and ``indicator_token_hits``.

    The GIL is released while the library runs.
    """
    account_array = _vector("account", account, np.int64)
    count = account_array.shape[0]
    embedding_matrix = _matrix("embedding", embedding, rows=count)
    time_array = None if time is None else _vector("time", time, np.int64, length=count)
    ids = None if account_ids is None else _vector("account_ids", account_ids, np.int64)
    feature_matrix = None
    if features is not None:
        if ids is None:
            raise InvalidInputError("arrays: features: given without account_ids (whose order its rows follow)")
        feature_matrix = _matrix("features", features, rows=ids.shape[0])
    infra_matrix = None
    if infra is not None:
        infra_matrix = np.asarray(infra)
        if infra_matrix.ndim == 1:
            infra_matrix = infra_matrix.reshape(-1, 1)
        if infra_matrix.ndim != 2 or (infra_matrix.size and not np.issubdtype(infra_matrix.dtype, np.integer)):
            raise InvalidInputError(f"arrays: infra: expected integers of shape [R] or [R, K], got "
                                    f"{infra_matrix.dtype} {infra_matrix.shape}")
        if infra_matrix.shape[0] != count:
            raise InvalidInputError(f"arrays: infra: {infra_matrix.shape[0]} rows, expected {count}")
        infra_matrix = np.ascontiguousarray(infra_matrix, dtype=np.int64)
    per_account = {}
    for name, values in (("payment", payment), ("created", created)):
        if values is None:
            per_account[name] = None
            continue
        if ids is None:
            raise InvalidInputError(f"arrays: {name}: given without account_ids (whose order it follows)")
        per_account[name] = _vector(name, values, np.int64, length=ids.shape[0])
    for name in ("allow", "seeds", "indicators_out", "indicators_in"):
        if isinstance(options.get(name), os.PathLike):
            options[name] = os.fspath(options[name])
    if isinstance(options.get("seeds"), np.ndarray):
        options["seeds"] = [int(a) for a in options["seeds"]]
    unknown = sorted(set(options) - set(DETECT_DEFAULTS))
    if unknown:
        raise InvalidInputError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(DETECT_DEFAULTS)}")
    result = _ringscan.detect(
        account_array,
        embedding_matrix,
        time_array,
        ids,
        feature_matrix,
        list(feature_names or []),
        list(categorical_features),
        infra_matrix,
        list(infra_names or []),
        per_account["payment"],
        per_account["created"],
        dict(options),
        int(threads),
        memory_budget or "",
        device_memory_budget or "",
        _progress_callback(progress),
    )
    return Detection(**result)


def load(path: str, *, labels: bool = False, memory_budget: Optional[str] = None) -> Dict[str, Any]:
    """Reads and validates an input file as ``ringscan detect`` does (schema in the README).

    Returns the arrays :func:`detect` takes (``account``, ``embedding``, ``time``,
    ``account_ids``, ``features``, ``feature_names``, ``categorical_features``, ``infra``,
    ``infra_names``, ``payment``, ``created``; None or empty when absent) and, with
    ``labels=True``, ``label`` (the file's /accounts/label). The file is parsed in this
    process: load only files you trust (the command parses in a child process).
    """
    data = _ringscan.load(str(path), bool(labels), memory_budget or "")
    for key in ("role", "ring_style"):
        data.pop(key, None)
    return data


def generate(path: Optional[str] = None, *, threads: int = 0, **options: Any) -> Optional[Dict[str, Any]]:
    """Synthetic traffic with planted rings and look-alikes, as ``ringscan generate``.

    With ``path`` the input file is written there; without, the arrays are returned as by
    :func:`load`, with the ground truth ``label`` (ring per account, -1 none), ``role`` and
    ``ring_style``. Options by their command-line names (``accounts``, ``dim``, ``seed``,
    ``requests_per_account``, ``days``, ``times``, ``features``, ``infrastructure``, ...).
    """
    return _ringscan.generate(dict(options), None if path is None else str(path), int(threads))


def evaluate(result: Any, truth: Any, account_ids: Any = None) -> Dict[str, Any]:
    """Scores reported rings against planted ones, as ``ringscan evaluate``.

    result: a :class:`Detection`, or ring labels per account.
    truth: ring labels per account (-1: none), in the order of ``account_ids`` when given,
    else in the order of ``result``'s accounts.
    account_ids: the accounts ``truth`` follows, to align it with a Detection's.
    """
    if isinstance(result, Detection):
        ring = result.ring
        if account_ids is not None:
            order = _vector("account_ids", account_ids, np.int64)
            position = {int(a): i for i, a in enumerate(order)}
            truth_array = _vector("truth", truth, np.int64, length=order.shape[0])
            try:
                truth = truth_array[[position[int(a)] for a in result.account_id]]
            except KeyError as missing:
                raise InvalidInputError(f"evaluate: account {missing} of the result is not in account_ids") from None
    else:
        ring = result
    ring_array = _vector("result", ring, np.int64)
    truth_array = _vector("truth", truth, np.int64, length=ring_array.shape[0])
    return _ringscan.evaluate(ring_array, truth_array)


class RingDetector:
    """:func:`detect` as a scikit-learn style estimator.

    ``RingDetector(false_edges=10, min_ring_size=3, ...).fit(account, embedding, time=...)``
    sets ``labels_`` (ring per account of ``account_ids_``, -1 none), ``scores_``,
    ``account_ids_`` and ``detection_`` (the whole :class:`Detection`). ``get_params`` and
    ``set_params`` follow scikit-learn, so it drops into experiment code that sweeps them.
    """

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(DETECT_DEFAULTS) - {"threads", "memory_budget"})
        if unknown:
            raise InvalidInputError(f"unknown parameter(s) {', '.join(unknown)}")
        self._params: Dict[str, Any] = {**DETECT_DEFAULTS, "threads": 0, "memory_budget": None}
        self._params.update(params)

    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        return dict(self._params)

    def set_params(self, **params: Any) -> "RingDetector":
        unknown = sorted(set(params) - set(self._params))
        if unknown:
            raise InvalidInputError(f"unknown parameter(s) {', '.join(unknown)}")
        self._params.update(params)
        return self

    def fit(self, account: Any, embedding: Any, time: Any = None, features: Any = None,
            feature_names: Optional[Sequence[str]] = None, account_ids: Any = None,
            categorical_features: Sequence[str] = ()) -> "RingDetector":
        params = dict(self._params)
        threads, budget = params.pop("threads"), params.pop("memory_budget")
        self.detection_ = detect(account, embedding, time=time, features=features, feature_names=feature_names,
                                 account_ids=account_ids, categorical_features=categorical_features,
                                 threads=threads, memory_budget=budget, **params)
        self.account_ids_ = self.detection_.account_id
        self.labels_ = self.detection_.ring
        self.scores_ = self.detection_.ring_score
        return self

    def fit_predict(self, account: Any, embedding: Any, **arrays: Any) -> np.ndarray:
        return self.fit(account, embedding, **arrays).labels_

    def __repr__(self) -> str:
        changed = {k: v for k, v in self._params.items() if DETECT_DEFAULTS.get(k, None) != v and v not in (0, None)}
        return "RingDetector(" + ", ".join(f"{k}={v!r}" for k, v in changed.items()) + ")"
