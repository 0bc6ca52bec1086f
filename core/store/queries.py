"""Build the SQL filters shared by count(), examples() and next_example().

Every filter is written so SQLite can walk ``examples`` in id order (or the score index) and
stop at the page it needs: paging a million examples never sorts the whole table.
"""

from __future__ import annotations

import re
from typing import Any

from annotune.core.errors import AnnotuneError
from annotune.core.store.records import FILTER_STATUSES

# The examples of an import still being written (or left behind by a killed one) are not part
# of the project yet: a batch's examples are those from its first id on (core/store/batches.py),
# so every read keeps to the ids below the lowest unfinished batch. The subquery is evaluated
# once per statement and SQLite walks the primary key up to it: it costs nothing per row.
VISIBLE_LIMIT = "(SELECT IFNULL(MIN(first_id) - 1, 9223372036854775807) FROM imports)"
VISIBLE = f"e.id <= {VISIBLE_LIMIT}"
UNLABELED = "NOT EXISTS (SELECT 1 FROM annotations a WHERE a.example_id = e.id)"
# A rare status: IN (subquery) builds the small set of ids once and probes it, instead of
# running a correlated subquery for every one of a million examples.
WITH_STATUS = "e.id IN (SELECT a.example_id FROM annotations a WHERE a.status = :status)"
# A common status: building the set would read a million ids to show one page, while walking
# examples in id order finds a match every few rows.
WITH_COMMON_STATUS = ("EXISTS (SELECT 1 FROM annotations a WHERE a.example_id = e.id "
                      "AND a.status = :status)")
COMMON_SHARE = 0.01  # a status held by at least this share of the examples is common
# A label matches a single-label payload, a multi-label list or any span of an NER payload.
WITH_LABEL = """e.id IN (SELECT a.example_id FROM annotations a WHERE (
    json_extract(a.payload, '$.label') = :label
    OR EXISTS (SELECT 1 FROM json_each(a.payload, '$.labels') l WHERE l.value = :label)
    OR EXISTS (SELECT 1 FROM json_each(a.payload, '$.spans') s
               WHERE json_extract(s.value, '$.label') = :label)))"""
MATCHES = "e.id IN (SELECT rowid FROM examples_fts WHERE examples_fts MATCH :search)"
# Letters of scripts written without spaces between words (Chinese, Japanese, Thai, Lao,
# Khmer, Myanmar) and Korean syllables, to which particles attach. The search index cuts words
# at spaces and punctuation, so "这个产品很好" is one word to it and "产品" found nothing: a
# search term holding such letters is looked for as a substring of the text instead (a scan
# of the examples the other filters leave, where the index answers from its word list).
UNSPACED = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf"
                      "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]")

# Per-label counts over accepted annotations, whatever the payload form.
LABEL_COUNTS = f"""
SELECT label, COUNT(*) AS n FROM (
    SELECT json_extract(payload, '$.label') AS label FROM annotations
        WHERE status = 'accepted' AND json_extract(payload, '$.label') IS NOT NULL
        AND example_id <= {VISIBLE_LIMIT}
    UNION ALL
    SELECT l.value FROM annotations a, json_each(a.payload, '$.labels') l
        WHERE a.status = 'accepted' AND a.example_id <= {VISIBLE_LIMIT}
    UNION ALL
    SELECT json_extract(s.value, '$.label') FROM annotations a, json_each(a.payload, '$.spans') s
        WHERE a.status = 'accepted' AND a.example_id <= {VISIBLE_LIMIT}
) WHERE label IS NOT NULL GROUP BY label
"""


def check_status(status: str | None) -> None:
    """Raise AnnotuneError for a status filter that does not exist."""
    if status is not None and status not in FILTER_STATUSES:
        raise AnnotuneError(f"unknown status filter '{status}'",
                            hint=f"use one of: {', '.join(FILTER_STATUSES)}")


def where(status: str | None = None, label: str | None = None, split: str | None = None,
          search: str | None = None, quote_fts: Any = None, common: bool = False
          ) -> tuple[list[str], dict[str, Any]]:
    """Return the WHERE clauses (joined with AND by the caller) and their named parameters.

    ``common``: the status filter matches a large share of the examples (see COMMON_SHARE).
    The clauses always keep to visible examples (``VISIBLE``).
    """
    check_status(status)
    clauses: list[str] = [VISIBLE]
    params: dict[str, Any] = {}
    if status == "unlabeled":
        clauses.append(UNLABELED)
    elif status is not None:
        clauses.append(WITH_COMMON_STATUS if common else WITH_STATUS)
        params["status"] = status
    if label is not None:
        clauses.append(WITH_LABEL)
        params["label"] = label
    if split is not None:
        clauses.append("e.split = :split")
        params["split"] = split
    if search is not None and search.strip():
        words, inside = split_search(search)
        if words:
            clauses.append(MATCHES)
            params["search"] = quote_fts(words) if quote_fts else words
        for n, part in enumerate(inside):
            clauses.append(f"instr(e.text, :inside{n}) > 0")
            params[f"inside{n}"] = part
    return clauses, params


def split_search(search: str) -> tuple[str, list[str]]:
    """Split a search into what the word index finds and the parts looked for inside texts.

    Terms holding letters of an unspaced script (see ``UNSPACED``) are matched as substrings;
    the other terms stay together, in order, so a quoted phrase still reads as one.
    """
    terms = search.split()
    inside = [term.strip('"') for term in terms if UNSPACED.search(term)]
    words = " ".join(term for term in terms if not UNSPACED.search(term))
    return words, [part for part in inside if part]


def sql_where(clauses: list[str]) -> str:
    return (" WHERE " + " AND ".join(clauses)) if clauses else ""
