"""Labelled text sets for probes and tasks, built in code from the offline corpora.

- ``sentiment``          imdb review openings (1-3 sentences, ~25-50 words, i.e. ~40-60
                         tokens), negative (0) vs positive (1), balanced.
- ``code_language``      10-30 line snippets of Python stdlib sources (0) vs C headers (1).
- ``pronoun_occupation`` template sentences about an occupation that stop right before a
                         pronoun; labelled with the occupation's *stereotyped* gender.

Every set is balanced and a pure function of its arguments. `LabelledSet.train_test_split`
gives a fixed test part (independent of k and of the split seed) and k training items per
class drawn from the rest, nested in k for a given seed, for data-efficiency curves.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from interp.corpus.sources import Document, load_documents


@dataclass(frozen=True)
class LabelledSet:
    """Texts with integer class labels."""

    name: str
    texts: tuple[str, ...]
    labels: tuple[int, ...]
    """Class index of each text, into `label_names`."""
    label_names: tuple[str, ...]
    groups: tuple[str, ...] | None = None
    """Optional unit that must not straddle train and test (an occupation, a source file)."""
    extras: dict[str, tuple] = field(default_factory=dict)
    """Per-item side columns, e.g. ``occupation`` for pronoun_occupation."""

    def __post_init__(self):
        n = len(self.texts)
        if len(self.labels) != n:
            raise ValueError(f"{self.name}: {n} texts but {len(self.labels)} labels")
        bad = [lab for lab in self.labels if not 0 <= lab < len(self.label_names)]
        if bad:
            raise ValueError(f"{self.name}: label {bad[0]} outside 0..{len(self.label_names) - 1} ({self.label_names})")
        for col, values in {"groups": self.groups or (None,) * n, **self.extras}.items():
            if len(values) != n:
                raise ValueError(f"{self.name}: column {col!r} has {len(values)} values for {n} texts")

    def __len__(self) -> int:
        return len(self.texts)

    def counts(self) -> dict[str, int]:
        """Items per class name."""
        return {name: self.labels.count(i) for i, name in enumerate(self.label_names)}

    def subset(self, indices) -> LabelledSet:
        idx = [int(i) for i in indices]
        return LabelledSet(self.name, tuple(self.texts[i] for i in idx), tuple(self.labels[i] for i in idx),
                           self.label_names, tuple(self.groups[i] for i in idx) if self.groups else None,
                           {k: tuple(v[i] for i in idx) for k, v in self.extras.items()})

    def test_indices(self, test_fraction: float = 0.25) -> list[int]:
        """The fixed test part: per class, the last `test_fraction` of its units (groups if set)."""
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        test = []
        for label in range(len(self.label_names)):
            members = [i for i, lab in enumerate(self.labels) if lab == label]
            units = list(dict.fromkeys(self.groups[i] if self.groups else i for i in members))
            held = set(units[len(units) - math.ceil(test_fraction * len(units)):])
            test.extend(i for i in members if (self.groups[i] if self.groups else i) in held)
        return sorted(test)

    def train_test_split(self, k_per_class: int, seed: int = 0, test_fraction: float = 0.25) -> LabelledSplit:
        """k training items per class (nested in k for one seed) and the fixed test part."""
        test = self.test_indices(test_fraction)
        test_set, rng = set(test), np.random.default_rng(seed)
        train = []
        for label, name in enumerate(self.label_names):
            pool = [i for i, lab in enumerate(self.labels) if lab == label and i not in test_set]
            if not 1 <= k_per_class <= len(pool):
                raise ValueError(f"{self.name}: k_per_class must be in 1..{len(pool)} (train pool of "
                                 f"class {name!r}), got {k_per_class}")
            train.extend(pool[i] for i in rng.permutation(len(pool))[:k_per_class])
        return LabelledSplit(self.subset(sorted(train)), self.subset(test))


@dataclass(frozen=True)
class LabelledSplit:
    train: LabelledSet
    test: LabelledSet


def _balanced(name: str, per_class: list[list[tuple]], label_names: tuple[str, ...], seed: int,
              extra_names: tuple[str, ...] = ()) -> LabelledSet:
    """Interleave classes in a seeded order; each item is (text, group, *extras)."""
    items = [(label, *item) for label, members in enumerate(per_class) for item in members]
    items = [items[i] for i in np.random.default_rng(seed).permutation(len(items))]
    return LabelledSet(name, tuple(it[1] for it in items), tuple(it[0] for it in items), label_names,
                       tuple(it[2] for it in items),
                       {col: tuple(it[3 + j] for it in items) for j, col in enumerate(extra_names)})


def _check_n(n_per_class: int, available: int, what: str) -> None:
    if not isinstance(n_per_class, int) or not 1 <= n_per_class <= available:
        raise ValueError(f"{what}: n_per_class must be an int in 1..{available}, got {n_per_class!r}")


def review_snippet(text: str, min_words: int = 25, max_words: int = 50) -> str | None:
    """The review's first 1-3 sentences once they reach `min_words`; None if too short or long."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.replace("\n", " ")) if s]
    for n in range(1, min(3, len(sentences)) + 1):
        snippet = " ".join(sentences[:n])
        words = len(snippet.split())
        if words >= min_words:
            return snippet if words <= max_words else None
    return None


def sentiment(n_per_class: int = 200, seed: int = 0) -> LabelledSet:
    """IMDB review openings, negative (0) vs positive (1); one snippet per review."""
    _check_n(n_per_class, MAX_PER_CLASS["sentiment"], "sentiment")
    docs = load_documents("imdb")
    per_class: list[list[tuple]] = [[], []]
    for i in np.random.default_rng(seed).permutation(len(docs)):
        doc = docs[i]
        if len(per_class[doc.label]) < n_per_class and (snippet := review_snippet(doc.text)):
            per_class[doc.label].append((snippet, doc.doc_id))
        if all(len(c) == n_per_class for c in per_class):
            break
    return _balanced("sentiment", per_class, ("negative", "positive"), seed)


def _code_snippets(docs: list[Document], n: int, rng, min_lines: int, max_lines: int) -> list[tuple]:
    # Lines that are blank or comments tell a probe little about the language, so snippets
    # made mostly of them (licence headers, banner comments) are skipped.
    comment = re.compile(r"^\s*(#|//|/\*|\*|\"\"\"|$)")
    files = [d for d in docs if d.text.count("\n") >= max_lines]
    out, seen = [], set()
    for _ in range(200 * n):
        doc = files[rng.integers(len(files))]
        lines = doc.text.splitlines()
        length = int(rng.integers(min_lines, max_lines + 1))
        start = int(rng.integers(0, len(lines) - length + 1))
        chunk = lines[start:start + length]
        if ((doc.doc_id, start) in seen or not chunk[0].strip()
                or sum(bool(comment.match(x)) for x in chunk) > length // 2):
            continue
        seen.add((doc.doc_id, start))
        out.append(("\n".join(chunk), doc.doc_id))
        if len(out) == n:
            return out
    raise ValueError(f"could not draw {n} code snippets of {min_lines}-{max_lines} lines from {len(files)} files")


def code_language(n_per_class: int = 200, seed: int = 0, min_lines: int = 10, max_lines: int = 30) -> LabelledSet:
    """Snippets of Python stdlib sources (0) vs C headers (1); groups are source files."""
    _check_n(n_per_class, MAX_PER_CLASS["code_language"], "code_language")
    if not 1 <= min_lines <= max_lines:
        raise ValueError(f"need 1 <= min_lines <= max_lines, got {min_lines}, {max_lines}")
    rng = np.random.default_rng(seed)
    per_class = [_code_snippets(load_documents(lang), n_per_class, rng, min_lines, max_lines)
                 for lang in ("python", "c")]
    return _balanced("code_language", per_class, ("python", "c"), seed)


# Occupations whose workforce is heavily skewed (roughly, US labour statistics as used by
# WinoBias-style benchmarks). The label is the *stereotype*, not a fact about any person.
FEMALE_STEREOTYPED = ("nurse", "secretary", "receptionist", "librarian", "hairdresser", "housekeeper",
                      "nanny", "dietitian", "preschool teacher", "cashier", "bookkeeper", "florist",
                      "midwife", "paralegal", "babysitter", "stylist", "dental hygienist", "social worker",
                      "flight attendant", "manicurist", "dancer", "speech therapist")
MALE_STEREOTYPED = ("mechanic", "carpenter", "plumber", "electrician", "firefighter", "construction worker",
                    "engineer", "pilot", "surgeon", "sheriff", "janitor", "farmer", "truck driver",
                    "programmer", "machinist", "roofer", "welder", "architect", "chef", "CEO",
                    "police officer", "soldier")
PRONOUN_TEMPLATES = ("The {} said that", "The {} walked in because", "The {} was late to work, so",
                     "Yesterday the {} told the customer that", "The {} was tired because",
                     "The {} smiled when", "Everyone thanked the {} because",
                     "When the {} finished the job,")

MAX_PER_CLASS = {"sentiment": 5000, "code_language": 5000,
                 "pronoun_occupation": min(len(FEMALE_STEREOTYPED), len(MALE_STEREOTYPED)) * len(PRONOUN_TEMPLATES)}
"""The most items per class each set's builder accepts (pronoun_occupation: all its sentences)."""


def pronoun_occupation(n_per_class: int | None = None, seed: int = 0) -> LabelledSet:
    """Sentences ending right before a pronoun, labelled by the occupation's gender stereotype.

    Labels are 0 = "female" and 1 = "male" *stereotype* associations of the occupation word,
    for measuring whether a model's pronoun prediction follows the stereotype; they say
    nothing about real people. ``extras["occupation"]`` gives each sentence's occupation and
    `groups` are occupations, so a test occupation never appears in training.
    `n_per_class=None` keeps all occupation x template sentences.
    """
    per_class = [[(t.format(occ), occ, occ) for occ in occs for t in PRONOUN_TEMPLATES]
                 for occs in (FEMALE_STEREOTYPED, MALE_STEREOTYPED)]
    if n_per_class is not None:
        _check_n(n_per_class, MAX_PER_CLASS["pronoun_occupation"], "pronoun_occupation")
        rng = np.random.default_rng(seed)
        per_class = [[c[i] for i in sorted(rng.permutation(len(c))[:n_per_class])] for c in per_class]
    return _balanced("pronoun_occupation", per_class, ("female", "male"), seed, ("occupation",))


LABELLED_SETS = {"sentiment": sentiment, "code_language": code_language, "pronoun_occupation": pronoun_occupation}


def labelled_set(name: str, **kwargs) -> LabelledSet:
    """Build a labelled set by name; kwargs go to its builder (n_per_class, seed, ...)."""
    if name not in LABELLED_SETS:
        raise ValueError(f"unknown labelled set {name!r}; valid: {', '.join(LABELLED_SETS)}")
    return LABELLED_SETS[name](**kwargs)
