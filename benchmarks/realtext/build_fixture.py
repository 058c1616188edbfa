#!/usr/bin/env python3
"""Builds a ringscan input file whose prompts are real texts embedded with all-MiniLM-L6-v2.

A generative story of its own, independent of `ringscan generate`: prompts are written as
text (Debian's fortunes for passages, wamerican for words), embedded by a real sentence
model (minilm.py), and the accounts, their timing and their twelve behaviour columns
follow a different model from the generator's:

- ordinary users: two to four habitual tasks (explain a quote, translate, rewrite, define
  a word, write a function...) over their own material, sessions in their own hours and
  time zone, now and then a follow-up that rewords their previous prompt;
- rings (templated: one to three prompt templates with slot fills; pooled: a shared pool
  of passages behind one instruction, reused with nonce tags; paraphrased: a few tasks each
  asked in several wordings), members working in the operator's hour-long sessions spread
  over the days, some with cover traffic, some light (2-6 requests), some with a scripted
  client and some whose clients vary as widely as anybody's;
- look-alikes: company teams (one client, office hours, a few internal documents passed
  around, diverse work otherwise), trending crowds (one topic asked in many wordings on one
  day), viral prompts pasted by thousands, and apps built on one public prompt template
  that many unrelated users fill with their own text.

    build_fixture.py -o OUT.h5 [--accounts N] [--rings N] [--seed S] [--cache DIR]

Writes /requests/{account,embedding,time} (float16 embeddings) and /accounts/{id,features,
label,role,ring_style} (role: 0 ordinary, 1 ring, 2 team, 3 crowd, 4 viral sharer, 5
template-app user; ring_style: 0 templated, 1 pooled, 3 paraphrased, -1 none), as `ringscan
generate` does. The file is a function of the options; vectors are cached by text in --cache.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

EPOCH = 1772323200  # 2026-03-01T00:00:00Z
FORTUNE_DIR = Path("/usr/share/games/fortunes")
FORTUNE_FILES = ["fortunes", "computers", "science", "literature", "people", "wisdom", "humorists",
                 "art", "education", "food", "law", "medicine", "miscellaneous", "platitudes",
                 "politics", "songs-poems", "sports", "work", "love", "pets", "linux", "riddles"]
WORDS_FILE = Path("/usr/share/dict/american-english")

ROLE_ORDINARY, ROLE_RING, ROLE_TEAM, ROLE_CROWD, ROLE_VIRAL, ROLE_APP = 0, 1, 2, 3, 4, 5  # AccountRole
STYLE_TEMPLATES, STYLE_POOL, STYLE_PARAPHRASED = 0, 1, 3  # RingStyle
FEATURES = ["client", "sdk_version", "temperature", "top_p", "max_tokens", "mean_prompt_tokens",
            "mean_output_tokens", "stream_fraction", "system_prompt_fraction", "error_rate",
            "requests_per_active_hour", "tool_call_fraction"]
CATEGORICAL = ["client", "sdk_version"]


def load_passages() -> list[str]:
    out = []
    for name in FORTUNE_FILES:
        f = FORTUNE_DIR / name
        if not f.exists():
            continue
        for block in f.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            text = " ".join(block.split())
            # One or two sentences of prose: no attributions-only lines, no ASCII art.
            if 40 <= len(text) <= 260 and re.search(r"[a-z]{3}", text) and "|" not in text:
                out.append(text)
    if len(out) < 2000:
        raise SystemExit("build_fixture.py: Debian's fortunes packages are missing "
                         "(apt-get install fortunes fortunes-min)")
    return sorted(set(out))


def load_words() -> tuple[list[str], list[str]]:
    if not WORDS_FILE.exists():
        raise SystemExit("build_fixture.py: /usr/share/dict/american-english is missing "
                         "(apt-get install wamerican)")
    words, names = [], []
    for w in WORDS_FILE.read_text(encoding="utf-8", errors="replace").split():
        if "'" in w or not w.isalpha() or not w.isascii():
            continue
        if w[0].isupper():
            if 3 <= len(w) <= 9:
                names.append(w)
        elif 4 <= len(w) <= 10:
            words.append(w)
    return sorted(set(words)), sorted(set(names))


class Texts:
    """The vocabulary of prompts: tasks ordinary users ask, over passages and words."""

    LANGS = ["French", "Spanish", "German", "Italian", "Portuguese", "Japanese", "Dutch", "Polish"]
    FORMS = ["poem", "limerick", "haiku", "short story", "song verse", "dialogue", "tweet", "toast"]
    PROGS = ["Python", "JavaScript", "Rust", "Go", "SQL", "Bash", "C++", "Java"]
    EVENTS = ["party", "workshop", "lesson plan", "birthday", "team offsite", "podcast episode"]

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.passages = load_passages()
        self.words, self.names = load_words()

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def word(self):
        return self.pick(self.words)

    def passage(self):
        return self.pick(self.passages)

    # Task kinds of ordinary users: each a function of the user's own material.
    def ordinary(self, kind: int) -> str:
        r, w, p = self.rng, self.word, self.passage
        if kind == 0:
            return f'What does this quote mean? "{p()}"'
        if kind == 1:
            return f"Translate into {self.pick(self.LANGS)}: {p()}"
        if kind == 2:
            return f"Rewrite this so it sounds more professional: {p()}"
        if kind == 3:
            return f"Write a {self.pick(self.FORMS)} about {w()} and {w()}."
        if kind == 4:
            return f"What is the difference between {w()} and {w()}?"
        if kind == 5:
            return f"Give me {int(r.integers(3, 11))} ideas for a {w()} themed {self.pick(self.EVENTS)}."
        if kind == 6:
            return f"How do I {w()} the {w()} in {self.pick(self.PROGS)}? My code keeps failing."
        if kind == 7:
            return f"Is this sentence grammatically correct: {p()}"
        if kind == 8:
            return f"Define the word '{w()}' and use it in a sentence."
        if kind == 9:
            return p()
        if kind == 10:
            return f"Summarize in one line: {p()} {p()}"
        return f"I am writing about {w()}. Can you suggest a title that mentions {w()}?"

    N_KINDS = 12


# --- behaviour columns -----------------------------------------------------------------

def population_client(rng) -> np.ndarray:
    """One account's behaviour columns, drawn from the population of clients."""
    f = np.zeros(len(FEATURES), np.float64)
    client = rng.choice(6, p=[0.45, 0.25, 0.1, 0.1, 0.05, 0.05])
    f[0] = client
    f[1] = client * 10 + min(9, int(rng.geometric(0.45)) - 1)  # versions per client, newest most used
    u = rng.random()
    f[2] = 1.0 if u < 0.45 else 0.7 if u < 0.65 else 0.0 if u < 0.75 else round(rng.uniform(0, 1.5), 2)
    f[3] = 1.0 if rng.random() < 0.7 else round(rng.uniform(0.5, 1.0), 2)
    f[4] = 4096 if rng.random() < 0.4 else rng.choice([256, 512, 1024, 2048, 4096, 8192])
    f[5] = rng.lognormal(np.log(120), 0.8)
    f[6] = rng.lognormal(np.log(300), 0.7)
    f[7] = rng.beta(0.5, 0.5)
    f[8] = rng.beta(0.7, 1.5)
    f[9] = rng.beta(0.5, 30)
    f[10] = rng.lognormal(np.log(6), 0.9)
    f[11] = 0.0 if rng.random() < 0.7 else rng.beta(1, 4)
    return f


def jittered(base: np.ndarray, rng, scale: float) -> np.ndarray:
    """A scripted client run by one operator: the same settings, measured rates that vary."""
    f = base.copy()
    for j in (5, 6, 10):
        f[j] = base[j] * np.exp(scale * rng.normal())
    for j in (7, 8, 9, 11):
        f[j] = float(np.clip(base[j] + 0.5 * scale * rng.normal() * 0.3, 0, 1))
    return f


# --- timing ------------------------------------------------------------------------------

class Clock:
    def __init__(self, rng, days: int):
        self.rng, self.days = rng, days

    def personal(self, n: int, tz: int, start: float, length: float) -> list[int]:
        """n requests in sessions on a few active days, in the user's local hours."""
        rng = self.rng
        active_days = rng.choice(self.days, size=min(self.days, 1 + int(rng.poisson(3))), replace=False)
        out = []
        while len(out) < n:
            day = int(rng.choice(active_days))
            local = start + rng.uniform(0, length)
            t = day * 86400 + int((local - tz) * 3600)
            for _ in range(min(n - len(out), 1 + int(rng.geometric(0.35)))):
                out.append(t)
                t += int(rng.exponential(200)) + 5
        return [EPOCH + (t % (self.days * 86400)) for t in out]


# --- the world ---------------------------------------------------------------------------

def build(args) -> None:
    rng = np.random.default_rng(args.seed)
    T = Texts(rng)
    clock = Clock(rng, args.days)
    A = args.accounts
    texts: list[str] = []
    owner: list[int] = []
    times: list[int] = []
    features = np.zeros((A, len(FEATURES)), np.float64)
    label = -np.ones(A, np.int64)
    role = np.zeros(A, np.int64)
    style_of_ring = {"templated": STYLE_TEMPLATES, "pooled": STYLE_POOL, "paraphrased": STYLE_PARAPHRASED}
    ring_style = -np.ones(A, np.int64)
    perm = rng.permutation(A)
    nxt = 0

    def take(n):
        nonlocal nxt
        ids = perm[nxt:nxt + n]
        nxt += n
        return ids

    def add(acc, text, t):
        texts.append(text)
        owner.append(int(acc))
        times.append(int(t))

    def volume(mean=args.requests_per_account, sigma=0.9, lo=1):
        return max(lo, int(round(rng.lognormal(np.log(mean) - sigma * sigma / 2, sigma))))

    def ordinary_traffic(acc, n, kinds=None, tz=None):
        kinds = kinds if kinds is not None else rng.choice(T.N_KINDS, size=int(rng.integers(2, 5)), replace=False)
        tz = tz if tz is not None else int(rng.choice([-8, -5, 0, 1, 2, 5, 8, 9]))
        ts = clock.personal(n, tz, rng.uniform(6, 14), rng.uniform(4, 12))
        last = None
        for t in sorted(ts):
            if last is not None and rng.random() < 0.12:
                text = "Actually, " + last[0].lower() + last[1:]  # a follow-up rewording
            else:
                text = T.ordinary(int(rng.choice(kinds)))
            add(acc, text, t)
            last = text

    # Rings: the operator's styles of harvesting.
    ring_sizes = [int(s) for s in np.clip(rng.lognormal(np.log(14), 0.6, size=args.rings), 5, 45)]
    ring_styles = ["templated", "pooled", "paraphrased"]
    for k, size in enumerate(ring_sizes):
        style = ring_styles[k % 3]
        members = take(size)
        scripted = rng.random() < 0.5
        base = population_client(rng)
        light = rng.random() < 0.25
        cover = rng.choice([0.0, 0.1, 0.3, 0.5])
        counts = [int(rng.integers(2, 7)) if light else volume(args.requests_per_account * 1.2, 0.5, 3)
                  for _ in members]
        make = ring_prompt_maker(style, T, rng, sum(counts) * (1 - cover))
        # The operator's sessions: an hour or two each, at any time of day, over the span.
        sessions = [(int(rng.integers(0, args.days * 86400 - 7200)), int(rng.integers(1800, 7200)))
                    for _ in range(int(rng.integers(10, 40)))]
        for acc, n in zip(members, counts):
            label[acc] = k
            role[acc] = ROLE_RING
            ring_style[acc] = style_of_ring[style]
            features[acc] = jittered(base, rng, 0.15) if scripted else population_client(rng)
            mine = [sessions[i] for i in rng.choice(len(sessions), size=max(1, int(len(sessions) * rng.uniform(0.3, 0.8))), replace=False)]
            n_cover = int(rng.binomial(n, cover))
            for _ in range(n - n_cover):
                s0, dur = mine[int(rng.integers(len(mine)))]
                add(acc, make(), EPOCH + s0 + int(rng.integers(dur)))
            if n_cover:
                ordinary_traffic(acc, n_cover)

    # Company teams: one client, office hours, diverse work, a few internal documents.
    n_team_accounts = int(args.lookalike_fraction * A / 2)
    while n_team_accounts >= 5:
        size = int(min(n_team_accounts, rng.integers(5, 16)))
        n_team_accounts -= size
        members = take(size)
        base = population_client(rng)
        tz = int(rng.choice([-8, -5, 0, 1, 8]))
        docs = [" ".join(T.passage() for _ in range(3)) for _ in range(int(rng.integers(1, 4)))]
        kinds = rng.choice(T.N_KINDS, size=4, replace=False)
        for acc in members:
            role[acc] = ROLE_TEAM
            features[acc] = jittered(base, rng, 0.1)
            n = volume()
            ordinary_traffic(acc, n, kinds=kinds, tz=tz)
            for d in docs:
                if rng.random() < 0.5:
                    verb = T.pick(["Summarize this document", "List the action items in",
                                   "Review this draft", "Find the risks in"])
                    day = int(rng.integers(args.days))
                    add(acc, f"{verb}: {d}", EPOCH + day * 86400 + int((rng.uniform(9, 17) - tz) * 3600) % 86400)

    # Trending crowds: one topic on one day, asked in many wordings.
    n_crowd = args.lookalike_fraction * A - (args.lookalike_fraction * A / 2)
    crowd_templates = ["What happened with the {t}?", "Can someone explain the {t} to me?",
                       "Why is everyone talking about the {t}?", "Give me a quick summary of the {t}.",
                       "Is the {t} a big deal?", "What are people saying about the {t}?",
                       "Explain the {t} like I'm five.", "{t}: what do I need to know?"]
    while n_crowd >= 20:
        size = int(min(n_crowd, rng.integers(20, 120)))
        n_crowd -= size
        topic = f"{T.word()} {T.pick(['scandal', 'launch', 'outage', 'storm', 'election', 'merger', 'verdict'])} in {T.pick(T.names)}"
        day = int(rng.integers(args.days))
        for acc in take(size):
            role[acc] = ROLE_CROWD
            features[acc] = population_client(rng)
            ordinary_traffic(acc, volume())
            for _ in range(int(rng.integers(1, 3))):
                add(acc, T.pick(crowd_templates).format(t=topic), EPOCH + day * 86400 + int(rng.integers(86400)))

    # Everybody else; some paste viral prompts, some use public template apps.
    viral = [f"{T.passage()} Explain this in detail and give three examples." for _ in range(args.viral_prompts)]
    viral_share = rng.uniform(0.02, 0.08, size=len(viral))
    apps = ["You are an expert copywriter. Write a persuasive product description for: {x}",
            "Act as a friendly tutor. Explain the following to a ten-year-old: {x}",
            "You are a professional editor. Fix the grammar and spelling of this text without changing its meaning: {x}"]
    rest = perm[nxt:]
    for acc in rest:
        features[acc] = population_client(rng)
        ordinary_traffic(acc, volume())
        for v, share in zip(viral, viral_share):
            if rng.random() < share:
                role[acc] = ROLE_VIRAL
                add(acc, v if rng.random() < 0.7 else v.replace(".", "!", 1), EPOCH + int(rng.integers(args.days * 86400)))
        if rng.random() < 0.06:
            role[acc] = ROLE_APP if role[acc] == ROLE_ORDINARY else role[acc]
            app = T.pick(apps)
            for _ in range(int(rng.integers(1, 6))):
                add(acc, app.format(x=T.passage() if rng.random() < 0.5 else f"a {T.word()} {T.word()}"),
                    EPOCH + int(rng.integers(args.days * 86400)))

    # Embed, shuffle the requests and write the file.
    from minilm import MiniLM
    enc = MiniLM(cache_dir=args.cache)
    started = time.time()
    unique = len(set(texts))
    print(f"build_fixture: {A} accounts, {len(ring_sizes)} rings, {len(texts)} requests "
          f"({unique} distinct texts); embedding...", file=sys.stderr)

    def progress(done, total):
        if done == total or done % 2048 < 64:
            print(f"build_fixture: embedded {done}/{total} new texts ({time.time() - started:.0f} s)", file=sys.stderr)
    vectors = enc.encode(texts, progress=progress)
    enc.save_cache()
    order = rng.permutation(len(texts))
    ids = (np.arange(A, dtype=np.int64) * 7919 + 1000003)  # distinct, not in any order of roles
    write(args.output, ids[np.array(owner)[order]], vectors[order].astype(np.float16),
          np.array(times, np.int64)[order], ids, features.astype(np.float32), label, role, ring_style, args,
          [texts[i] for i in order])


def ring_prompt_maker(style: str, T: Texts, rng, volume: float):
    """A function returning one of the ring's prompts, in its style."""
    if style == "templated":
        templates = []
        for _ in range(int(rng.integers(1, 4))):
            kind = int(rng.integers(4))
            if kind == 0:
                templates.append(lambda: (f"Solve step by step and show all reasoning: a tank holds {rng.integers(10, 999)} litres "
                                          f"and drains {rng.integers(2, 60)} litres per minute while {rng.integers(1, 30)} "
                                          f"litres flow in. After how many minutes is it empty?"))
            elif kind == 1:
                tasks = [f"{T.word()}s a list of {T.word()} records by {T.word()}" for _ in range(40)]
                templates.append(lambda tasks=tasks: (f"Write a Python function that {T.pick(tasks)}. Include type hints, "
                                                      f"a docstring and three unit tests."))
            elif kind == 2:
                templates.append(lambda: (f"Think carefully. {T.pick(T.names)} has {rng.integers(2, 90)} {T.word()}s and gives "
                                          f"{rng.integers(1, 20)} to {T.pick(T.names)}, who already had {rng.integers(1, 50)}. "
                                          f"How many does each have now? Explain every step."))
            else:
                templates.append(lambda: (f"You may call search(query) and calculate(expression). Question: what is the "
                                          f"{T.word()} rate of {T.pick(T.names)} divided by {rng.integers(2, 500)}? "
                                          f"Show each tool call."))
        return lambda: templates[int(rng.integers(len(templates)))]()
    if style == "pooled":
        instruction = T.pick(["Give a detailed step-by-step analysis of the following passage, then a one-line summary:",
                              "Answer as an expert would, reasoning out loud before the final answer:",
                              "Produce a chain of thought, then the answer, for this prompt:"])
        # A pool the ring's traffic reuses a few times over: one so large that no prompt
        # recurs would look like anybody's traffic.
        pool = [T.passage() for _ in range(max(5, int(volume / rng.uniform(2, 6))))]

        def pooled():
            text = f"{instruction} {T.pick(pool)}"
            return text if rng.random() < 0.5 else f"{text} [ref {rng.integers(16**6):06x}]"
        return pooled
    # Paraphrased: a few tasks, each asked in several wordings.
    topics = [f"{T.word()} {T.word()}" for _ in range(int(rng.integers(3, 10)))]
    wordings = ["Explain how {t} works, in detail.", "Can you explain in detail how {t} works?",
                "I need a thorough explanation of how {t} works.", "Describe in depth the way {t} works.",
                "How does {t} work? Please be detailed."]
    return lambda: T.pick(wordings).format(t=T.pick(topics))


def write(path, request_account, embedding, request_time, ids, features, label, role, ring_style, args,
          texts) -> None:
    import h5py
    tmp = f"{path}.tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = "ringscan"
        f.attrs["version"] = np.int64(1)
        r = f.create_group("requests")
        r.create_dataset("account", data=request_account)
        r.create_dataset("embedding", data=embedding)
        if not args.no_times:
            r.create_dataset("time", data=request_time)
        # For reports only (detect never reads them): the texts, and request ids as a
        # provider's log store might number them.
        r.create_dataset("text", data=np.array(texts, dtype=object), dtype=h5py.string_dtype("utf-8"))
        r.create_dataset("id", data=np.int64(5_000_000_000) + np.arange(len(texts), dtype=np.int64) * 13)
        a = f.create_group("accounts")
        a.create_dataset("id", data=ids)
        if not args.no_features:
            d = a.create_dataset("features", data=features)
            d.attrs["names"] = np.array(FEATURES, dtype=h5py.string_dtype())
            d.attrs["categorical"] = np.array(CATEGORICAL, dtype=h5py.string_dtype())
        a.create_dataset("label", data=label)
        a.create_dataset("role", data=role)
        a.create_dataset("ring_style", data=ring_style)
    os.replace(tmp, path)
    print(f"build_fixture: wrote {path}: {len(ids)} accounts, {len(request_account)} requests, "
          f"{int((label >= 0).sum())} ring members in {len(set(label[label >= 0].tolist()))} rings", file=sys.stderr)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--accounts", type=int, default=4000)
    p.add_argument("--rings", type=int, default=12)
    p.add_argument("--requests-per-account", type=float, default=10)
    p.add_argument("--lookalike-fraction", type=float, default=0.08)
    p.add_argument("--viral-prompts", type=int, default=4)
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cache", default=None, help="folder for the embedding cache")
    p.add_argument("--no-times", action="store_true", help="leave /requests/time out")
    p.add_argument("--no-features", action="store_true", help="leave /accounts/features out")
    args = p.parse_args()
    build(args)


if __name__ == "__main__":
    main()
