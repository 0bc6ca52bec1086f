"""Find texts that are the same or nearly the same, so a validation split keeps them together.

Two texts belong together when their normalized forms are equal (case, accents, punctuation,
spacing and invisible joiners folded away), or when their words and word pairs overlap by at
least ``SIMILAR`` (Jaccard). SST-2, for instance, holds phrases of one review sentence as separate
rows ("one of the year 's best films" and "is one of the year 's best films"): held out on
their own, such a row is graded on what training already showed, and validation flatters the
model. Candidate pairs come from MinHash signatures cut into bands (locality-sensitive
hashing), so the work grows with the number of texts, not with its square; every candidate is
checked on its real shingles before it joins a group.

Numpy and the standard library only: tasks (plugins) call it from their ``group_keys``.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Sequence

import numpy as np

SIMILAR = 0.8  # Jaccard of words and word pairs from which texts are near-duplicates
PERMUTATIONS = 32  # MinHash functions per text
BAND_ROWS = 4  # functions per band: texts equal on one band's rows become candidates
# Texts compared within one band bucket: a bucket of many short texts that share their
# commonest word would otherwise cost the square of its size. Each member is compared with
# the first LEADERS members only; true near-duplicates share several buckets, so they still
# meet in one of them.
LEADERS = 50
# MinHash estimates a Jaccard of 0.8 from 32 values with a standard error of about 0.07: pairs
# estimated below 0.8 minus this margin (three standard errors) are dropped unchecked.
ESTIMATE_SLACK = 0.2
_PRIME = (1 << 31) - 1  # the hash family (a * x + b) mod p on 31-bit token hashes
_CHUNK_TOKENS = 200_000  # shingles hashed per numpy step: bounds memory on million-row projects
# Scripts written without spaces between words: each character is a token of its own.
_UNSPACED = ("\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf"
             "\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f")
_WORDS = re.compile(f"[{_UNSPACED}]|[^\\s{_UNSPACED}]+")


class _Folding(dict):
    """A str.translate table built as characters are met: marks and joiners dropped,
    punctuation, spaces and control characters turned into spaces, the rest kept."""

    def __missing__(self, point: int) -> str | None:
        category = unicodedata.category(chr(point))
        value = None if category in ("Mn", "Me", "Cf") else " " if category[0] in "PZC" \
            else chr(point)
        self[point] = value
        return value


_FOLDING = _Folding()


def normalized(text: str) -> str:
    """Fold a text to the form near-duplicates share: casefolded, accents and punctuation gone.

    Compatibility decomposition (NFKD) splits "é" into "e" and a combining accent, which is
    dropped with every other mark, format character (zero-width joiners) and punctuation;
    whitespace and control characters become single spaces. Letters, digits and symbols (emoji
    included) stay: "great 🍕" and "great 😡" are different texts.
    """
    folded = unicodedata.normalize("NFKD", text).translate(_FOLDING).casefold()
    return " ".join(folded.split())


def shingles(folded: str) -> frozenset[str]:
    """Return the words and word pairs of a normalized text (unspaced scripts: characters).

    Pairs keep word order in the comparison: two paragraphs written with the same words in
    another order are different texts, while a phrase and the phrase with one more word
    still share most of both.
    """
    words = _WORDS.findall(folded)
    return frozenset(words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)])


class _Groups:
    """Union-find over text indices."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:  # path compression
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def near_duplicate_groups(texts: Sequence[str], similar: float = SIMILAR) -> list[int]:
    """Return a group number per text; equal numbers mark the same or nearly the same text.

    The number is the index of the group's first text, so it is stable for a given input.
    """
    groups = _Groups(len(texts))
    folded = [normalized(text) for text in texts]
    first: dict[str, int] = {}
    for index, text in enumerate(folded):
        groups.union(first.setdefault(text, index), index)
    # one representative per distinct normalized text goes through MinHash
    representatives = sorted(first.values())
    sets = [shingles(folded[i]) for i in representatives]
    for a, b in _candidates(sets):
        if _jaccard(sets[a], sets[b]) >= similar:
            groups.union(representatives[a], representatives[b])
    return [groups.find(i) for i in range(len(texts))]


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 1.0 if a == b else 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def _candidates(sets: Sequence[frozenset[str]]) -> set[tuple[int, int]]:
    """Return index pairs whose MinHash signatures agree on a band and on about SIMILAR of all.

    The estimate (the share of equal MinHash values) only thins the candidates cheaply; the
    caller checks the survivors on their shingles.
    """
    signatures = _signatures(sets)
    filled = np.flatnonzero(np.fromiter((bool(s) for s in sets), dtype=bool, count=len(sets)))
    pairs: set[tuple[int, int]] = set()
    for band in range(0, PERMUTATIONS, BAND_ROWS):
        rows = np.ascontiguousarray(signatures[filled, band:band + BAND_ROWS])
        _, bucket, counts = np.unique(rows.view(f"V{rows.itemsize * BAND_ROWS}").ravel(),
                                      return_inverse=True, return_counts=True)
        shared = counts[bucket] > 1
        members = filled[shared]
        order = np.argsort(bucket[shared], kind="stable")
        members, keys = members[order], bucket[shared][order]
        cuts = np.flatnonzero(np.diff(keys)) + 1
        left: list[int] = []
        right: list[int] = []
        for group in np.split(members, cuts):
            group = group.tolist()
            for position in range(1, len(group)):
                for leader in group[:min(position, LEADERS)]:
                    left.append(leader)
                    right.append(group[position])
        if not left:
            continue
        a, b = np.asarray(left), np.asarray(right)
        agree = (signatures[a] == signatures[b]).mean(axis=1)
        keep = agree >= SIMILAR - ESTIMATE_SLACK
        pairs.update(zip(a[keep].tolist(), b[keep].tolist(), strict=True))
    return pairs


def _signatures(sets: Sequence[frozenset[str]]) -> np.ndarray:
    """Return a (texts, PERMUTATIONS) array of MinHash values (empty sets get the maximum)."""
    rng = np.random.default_rng(20240611)  # fixed: the same texts always group the same way
    a = rng.integers(1, _PRIME, size=PERMUTATIONS, dtype=np.int64)
    b = rng.integers(0, _PRIME, size=PERMUTATIONS, dtype=np.int64)
    hashes: dict[str, int] = {}
    signatures = np.full((len(sets), PERMUTATIONS), _PRIME, dtype=np.int64)
    start = 0
    while start < len(sets):
        owners: list[int] = []
        values: list[int] = []
        stop = start
        while stop < len(sets) and len(values) < _CHUNK_TOKENS:
            for word in sets[stop]:
                value = hashes.get(word)
                if value is None:
                    value = hashes[word] = zlib.crc32(word.encode("utf-8")) & _PRIME
                values.append(value)
                owners.append(stop)
            stop += 1
        if values:
            x = np.asarray(values, dtype=np.int64)
            hashed = (x[:, None] * a[None, :] + b[None, :]) % _PRIME
            # each text's tokens are consecutive rows: one minimum per run of rows
            owner = np.asarray(owners, dtype=np.int64)
            starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
            signatures[owner[starts]] = np.minimum.reduceat(hashed, starts, axis=0)
        start = stop
    return signatures
