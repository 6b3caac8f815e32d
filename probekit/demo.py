"""The built-in ``demo`` task: a small synthetic sentiment task probekit generates itself
(offline, deterministic), so that every command runs without downloading anything."""

from __future__ import annotations

import numpy as np

from .taskspec import TASKS, TaskData, normalize_split

__all__ = ["load_demo"]

_POS = [
    "great",
    "wonderful",
    "superb",
    "delightful",
    "moving",
    "brilliant",
    "charming",
    "excellent",
    "funny",
    "beautiful",
    "gripping",
    "clever",
]
_NEG = [
    "awful",
    "dull",
    "terrible",
    "boring",
    "clumsy",
    "tedious",
    "bland",
    "painful",
    "lifeless",
    "weak",
    "messy",
    "forgettable",
]
_SUBJ = [
    "the film",
    "this movie",
    "the story",
    "the acting",
    "the script",
    "the ending",
    "the cast",
    "the soundtrack",
    "the director's latest work",
    "the second half",
    "its dialogue",
    "the plot",
]
_FRAMES = [
    "{s} was {a} .",
    "{s} is {a} and {b} .",
    "honestly , {s} felt {a} .",
    "i thought {s} was {a} , even {b} .",
    "{s} turned out {a} .",
    "what a {a} experience ; {s} stays with you .",
]
_DEMO_SIZES = {"train": 600, "dev": 200, "test": 200}
_DEMO_SEEDS = {"train": 11, "dev": 22, "test": 33}


def load_demo(split: str = "train", limit: int | None = None) -> TaskData:
    """A small synthetic sentiment task (600/200/200 examples), generated offline.

    Sentences are built from templates with positive or negative adjectives, with 10%
    label noise so that no probe is perfect. Deterministic for a given split.
    """
    task = TASKS["demo"]
    split = normalize_split(task, split)
    rng = np.random.default_rng(_DEMO_SEEDS[split])
    n = _DEMO_SIZES[split]
    texts, labels = [], []
    for _ in range(n):
        y = int(rng.integers(2))
        words = _POS if y else _NEG
        a, b = rng.choice(words, size=2, replace=False)
        s = _SUBJ[int(rng.integers(len(_SUBJ)))]
        frame = _FRAMES[int(rng.integers(len(_FRAMES)))]
        texts.append(frame.format(s=s, a=a, b=b))
        labels.append(y if rng.random() > 0.1 else 1 - y)
    data = TaskData(
        task,
        split,
        texts,
        None,
        np.asarray(labels, dtype=np.int64),
        np.arange(n, dtype=np.int64),
        f"demo:{split}",
    )
    return data.head(limit)
