"""Entity file formats: CoNLL (one token per line); span JSONL lives in plugins/span_jsonl.py.

CoNLL import turns each sentence into one example whose text is its tokens joined with single
spaces, with character spans computed from the tags. What a faithful export needs is kept in
the record's meta: the columns between token and tag, the ``-DOCSTART-`` lines before the
sentence, the separator and the tag scheme. Export writes the same tokens and columns with tags
from the current spans, so an unedited import → export gives back the file (blank lines
normalised to one between sentences).

A span edge inside a token (a text without spaces, such as Japanese, or an entity edited to
a part of a token) cuts the token there, so every entity is whole tokens and no tag is
wrong; an example that still cannot be written faithfully is refused by its id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from annotune.core.errors import AnnotuneError
from annotune.core.formats import sniffing
from annotune.core.formats.base import ExportRow, ImportOptions, ImportRecord, RowProblem
from annotune.core.formats.files import read_utf8, write_atomic
from annotune.core.hookspecs import hookimpl
from annotune.core.tasks import Task, TaskSettings
from annotune.plugins.span_jsonl import NER_TASKS, SpanJsonlExporter, SpanJsonlImporter
from annotune.plugins.spans import (
    SCHEMES,
    TagError,
    chunks_to_spans,
    chunks_to_tags,
    detect_scheme,
    imported_tokens,
    spans_to_chunks,
    split_at_span_edges,
    split_tag,
    tags_to_chunks,
    whitespace_tokens,
)

DOCSTART = "-DOCSTART-"


def _scheme_option(scheme: str | None, options: ImportOptions) -> str | None:
    chosen = scheme or options.mapping.get("scheme")
    if chosen is None or chosen.upper() in ("AUTO", ""):
        return None
    chosen = {"IOB2": "BIO", "IOBES": "BIOES"}.get(chosen.upper(), chosen.upper())
    if chosen not in SCHEMES:
        raise AnnotuneError(f"unknown tag scheme '{chosen}'",
                            hint=f"choose one of: {', '.join(SCHEMES)} (or leave it out to detect)")
    return chosen


# -- CoNLL ------------------------------------------------------------------------------------
class _Sentence:
    def __init__(self, before: list[str]):
        self.before = before  # -DOCSTART- lines that precede the sentence
        self.rows: list[tuple[int, list[str]]] = []  # (line number, columns)


def _sentences(text: str) -> tuple[list[_Sentence], str]:
    """Cut a CoNLL file into sentences; return them and the column separator it uses."""
    sentences: list[_Sentence] = []
    before: list[str] = []
    current: _Sentence | None = None
    separator = " "
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line.strip():
            current = None
            continue
        if line.split()[0] == DOCSTART:
            before.append(line)
            current = None
            continue
        if current is None:
            current = _Sentence(before)
            before = []
            sentences.append(current)
            if len(sentences) == 1 and "\t" in line:
                separator = "\t"
        current.rows.append((number, line.split()))
    return sentences, separator


def _sentence_problems(sentence: _Sentence, width: int, labels: tuple[str, ...]
                       ) -> list[RowProblem]:
    problems = []
    for number, columns in sentence.rows:
        if len(columns) != width:
            problems.append(RowProblem(
                number, f"expected {width} columns (token ... tag) but found {len(columns)}",
                hint="separate the columns with spaces or tabs, one token per line, and put a "
                     "blank line between sentences"))
            continue
        tag = columns[-1]
        try:
            _, label = split_tag(tag)
        except TagError as error:
            problems.append(RowProblem(number, str(error), field="tag",
                                       hint="use O, B-TYPE, I-TYPE (or E-/S- for BIOES)"))
            continue
        if label is not None and labels and label not in labels:
            problems.append(RowProblem(
                number, f"the tag '{tag}' names the entity type '{label}', which is not a "
                        f"project label", field="tag",
                hint=f"add '{label}' to the project labels ({', '.join(labels)}) or "
                     f"retag the token"))
    return problems


class ConllImporter:
    """Read CoNLL files: ``token [columns ...] tag`` per line, blank lines between sentences."""

    name = "conll"
    title = "CoNLL (token per line, BIO/IOB1/BIOES tags)"
    extensions = (".conll", ".bio", ".iob")
    tasks = NER_TASKS
    # Sentences are positions in a document: a repeated headline or "-DOCSTART-"-led sentence
    # is kept, or the export could not give back the file it came from.
    keeps_repeated_texts = True
    sniff = staticmethod(sniffing.token_columns)  # CoNLL-2003 itself ships as train.txt

    def __init__(self, scheme: str | None = None):
        self.scheme = scheme  # None: detect per file (or ImportOptions.mapping["scheme"])

    def read(self, path: Path, task: Task, settings: TaskSettings, options: ImportOptions
             ) -> Iterator[ImportRecord | RowProblem]:
        scheme = _scheme_option(self.scheme, options)
        sentences, separator = _sentences(read_utf8(Path(path), "a CoNLL file"))
        if not sentences:
            return
        # the usual column count is the file's: a broken first line must not condemn the rest
        width = Counter(len(c) for s in sentences for _, c in s.rows).most_common(1)[0][0]
        if width < 2:
            yield RowProblem(sentences[0].rows[0][0],
                             "a CoNLL line needs at least a token and a tag",
                             hint="write 'token tag' or 'token POS chunk tag' per line")
            return
        good: list[_Sentence] = []
        carried: list[str] = []  # a skipped sentence's document start moves to the next one
        for sentence in sentences:
            problems = _sentence_problems(sentence, width, settings.labels)
            if problems:
                yield from problems
                carried += sentence.before
                continue
            sentence.before = carried + sentence.before
            carried = []
            good.append(sentence)
        if scheme is None:
            scheme = detect_scheme([[c[-1] for _, c in s.rows] for s in good])
        for sentence in good:
            yield self._record(sentence, scheme, separator, width, options)

    @staticmethod
    def _record(sentence: _Sentence, scheme: str, separator: str, width: int,
                options: ImportOptions) -> ImportRecord:
        tokens = [columns[0] for _, columns in sentence.rows]
        tags = [columns[-1] for _, columns in sentence.rows]
        offsets, position = [], 0
        for token in tokens:
            offsets.append((position, position + len(token)))
            position += len(token) + 1
        chunks = tags_to_chunks(tags)
        meta: dict[str, Any] = {"format": "conll", "scheme": scheme, "separator": separator}
        if width > 2:
            meta["columns"] = [columns[1:-1] for _, columns in sentence.rows]
        if sentence.before:
            meta["before"] = list(sentence.before)
        if chunks_to_tags(chunks, len(tags), scheme) != tags:
            meta["tags"] = tags  # tags off their scheme (repaired on reading): kept as written
        return ImportRecord(fields={"text": " ".join(tokens)},
                            annotation={"spans": chunks_to_spans(chunks, offsets)},
                            split=options.split, line=sentence.rows[0][0], meta=meta)


class ConllExporter:
    """Write CoNLL: the imported tokens and columns, tags from the current spans."""

    name = "conll"
    title = "CoNLL (token per line, BIO/IOB1/BIOES tags)"
    extensions = (".conll", ".bio", ".iob")
    tasks = NER_TASKS

    def __init__(self, scheme: str | None = None):
        self.scheme = scheme  # None: each example's imported scheme, BIO for the others

    def write(self, path: Path, task: Task, rows: Iterable[ExportRow]) -> int:
        rows = list(rows)
        width = max((len(c[0]) for r in rows if (c := r.meta.get("columns"))), default=0)
        blocks, count = [], 0
        for row in rows:
            block = self._block(row, width)
            if block:
                blocks.append(block)
                count += 1
        write_atomic(Path(path), lambda out: out.write("".join(blocks)))
        return count

    def _block(self, row: ExportRow, width: int) -> str:
        meta = row.meta if row.meta.get("format") == "conll" else {}
        text = row.fields.get("text", "")
        spans = row.annotation.get("spans", [])
        # the tokens it was imported with (the single-space join of CoNLL import) when the
        # text still has that shape, else whitespace tokens with filler columns
        offsets = imported_tokens(text) if meta else None
        columns = meta.get("columns") if offsets is not None else None
        if offsets is None:
            offsets = whitespace_tokens(text)
        if not offsets:
            return ""
        if columns is not None and len(columns) != len(offsets):
            columns = None
        offsets, columns = split_at_span_edges(offsets, columns, spans)
        self._check_faithful(row, text, offsets, spans)
        scheme = self.scheme or meta.get("scheme", "BIO")
        chunks = spans_to_chunks(spans, offsets)
        tags = chunks_to_tags(chunks, len(offsets), scheme)
        original = meta.get("tags")
        if original and len(original) == len(tags) and tags_to_chunks(original) == chunks:
            tags = original  # the spans are unchanged: keep the file's own spelling of them
        separator = meta.get("separator", " ")
        lines = [f"{line}\n\n" for line in meta.get("before", [])]
        for index, (start, end) in enumerate(offsets):
            middle = list(columns[index]) if columns is not None else []
            middle += ["_"] * (width - len(middle))
            lines.append(separator.join([text[start:end], *middle, tags[index]]) + "\n")
        lines.append("\n")
        return "".join(lines)

    @staticmethod
    def _check_faithful(row: ExportRow, text: str, offsets: list[tuple[int, int]],
                        spans: list[dict[str, Any]]) -> None:
        """Refuse an example whose tokens cannot carry its spans, rather than write wrong tags."""
        place = f"example {row.example_id}"
        for label in sorted({s["label"] for s in spans}):
            if label != "".join(label.split()):
                raise AnnotuneError(f"the entity type {label!r} holds whitespace, "
                                    "which separates the columns of a CoNLL file (its tags "
                                    "would not read back)", where=place,
                                    hint="export as spans-jsonl or jsonl, which keep it")
        for start, end in offsets:
            if text[start:end] == DOCSTART:
                raise AnnotuneError(f"{place} holds the token {DOCSTART}, which a CoNLL file "
                                    "reads as a document break", where=place,
                                    hint="edit that word of the text, or export as spans-jsonl")
        chunks = spans_to_chunks(spans, offsets)
        written = sorted((s["start"], s["end"], s["label"])
                         for s in chunks_to_spans(chunks, offsets))
        wanted = sorted((s["start"], s["end"], s["label"]) for s in spans)
        if written != wanted:
            lost = [text[a:b] for a, b, _ in sorted(set(wanted) - set(written))]
            raise AnnotuneError(f"{place}: the entities {lost} cannot be written as whole "
                                "tokens of a CoNLL file (overlapping or empty spans?)",
                                where=place,
                                hint="fix the example's spans in the editor, or export as "
                                     "spans-jsonl")


@hookimpl
def register_formats(register: Any) -> None:
    for fmt in (ConllImporter(), ConllExporter(), SpanJsonlImporter(), SpanJsonlExporter()):
        register(fmt)

