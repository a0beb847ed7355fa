"""Labelled probe sets: balanced, deterministic, leak-free splits."""

from pathlib import Path

import pytest

from interp.corpus import LabelledSet, labelled_set
from interp.corpus.labelled import FEMALE_STEREOTYPED, MAX_PER_CLASS, MALE_STEREOTYPED, review_snippet


def test_pronoun_occupation_is_balanced_and_ends_before_a_pronoun():
    s = labelled_set("pronoun_occupation")
    assert len(FEMALE_STEREOTYPED) + len(MALE_STEREOTYPED) >= 40
    assert s.counts() == {"female": len(s) // 2, "male": len(s) // 2}
    for text, occ, label in zip(s.texts, s.extras["occupation"], s.labels):
        assert occ in text
        assert occ in (FEMALE_STEREOTYPED, MALE_STEREOTYPED)[label]
        assert text.split()[-1].lower() not in {"he", "she", "they", "his", "her"}
    assert labelled_set("pronoun_occupation") == s
    assert labelled_set("pronoun_occupation", seed=1).texts != s.texts


def test_split_keeps_occupations_apart_and_nests_in_k():
    s = labelled_set("pronoun_occupation", seed=3)
    small, big = s.train_test_split(2, seed=7), s.train_test_split(8, seed=7)
    assert small.train.counts() == {"female": 2, "male": 2}
    assert big.test.texts == small.test.texts  # fixed test part, whatever k
    assert set(small.train.texts) <= set(big.train.texts)
    assert not set(big.train.groups) & set(big.test.groups)
    assert big.test.counts()["female"] == big.test.counts()["male"]
    with pytest.raises(ValueError, match="k_per_class must be in 1.."):
        s.train_test_split(10_000)


def test_plain_split_by_item():
    s = LabelledSet("toy", tuple("abcdefgh"), (0, 1) * 4, ("x", "y"))
    split = s.train_test_split(3, seed=0, test_fraction=0.25)
    assert split.test.texts == ("g", "h")  # the last quarter of each class
    assert split.train.counts() == {"x": 3, "y": 3}
    with pytest.raises(ValueError, match="label 2 outside"):
        LabelledSet("bad", ("a",), (2,), ("x", "y"))


def test_sentiment_snippets_are_short_balanced_and_deterministic():
    s = labelled_set("sentiment", n_per_class=20, seed=0)
    assert s.counts() == {"negative": 20, "positive": 20}
    assert all(25 <= len(t.split()) <= 50 for t in s.texts)
    assert labelled_set("sentiment", n_per_class=20, seed=0) == s
    assert review_snippet("Too short.") is None
    assert review_snippet("One two three four five six seven eight nine ten. " * 6).count(".") == 3


@pytest.mark.skipif(not Path("/usr/include/stdio.h").exists(), reason="no C headers on this machine")
def test_code_language_snippets():
    s = labelled_set("code_language", n_per_class=10, seed=0)
    assert s.counts() == {"python": 10, "c": 10}
    assert all(10 <= t.count("\n") + 1 <= 30 for t in s.texts)
    assert all(g.startswith(("python:", "c:")) for g in s.groups)
    assert labelled_set("code_language", n_per_class=10, seed=0) == s


def test_unknown_set_and_bad_size():
    with pytest.raises(ValueError, match="sentiment, code_language, pronoun_occupation"):
        labelled_set("toxicity")
    with pytest.raises(ValueError, match="n_per_class"):
        labelled_set("pronoun_occupation", n_per_class=0)


def test_pronoun_occupation_holds_22_occupations_x_8_templates_per_class():
    assert MAX_PER_CLASS["pronoun_occupation"] == 22 * 8 == 176
    assert len(labelled_set("pronoun_occupation", n_per_class=176)) == 2 * 176
    with pytest.raises(ValueError, match=r"1\.\.176"):
        labelled_set("pronoun_occupation", n_per_class=177)
