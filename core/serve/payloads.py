"""Read a prediction request's JSON body into checked items, or say exactly what is wrong.

A body is ``{"inputs": [item, ...]}`` (answered with ``{"predictions": [...]}``) or
``{"input": item}`` (answered with ``{"prediction": {...}}``). An item is a text, for tasks
that read one field, or an object with a text under each of the task's fields (and any of its
optional fields, such as NER's ``tokens``). Every problem names the place in the body it was
found at (``inputs[3].question``), so a client can fix the one input that is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from annotune.core.formats.files import lone_surrogate, surrogate_message


class BadRequest(Exception):
    """A request the server refuses: the HTTP status and a message saying what to change."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class TaskInputs:
    """What one item of a task holds: required text fields, optional fields."""

    task_title: str
    fields: tuple[str, ...]
    optional_fields: tuple[str, ...] = ()

    def example(self) -> str:
        """Return an example item in JSON, for error messages."""
        if len(self.fields) == 1:
            return json.dumps("a text")
        return json.dumps({name: "..." for name in self.fields})


@dataclass(frozen=True)
class ParsedRequest:
    items: list[Any]
    single: bool  # {"input": ...}: answer {"prediction": ...}


def parse_body(body: bytes, inputs: TaskInputs, max_items: int) -> ParsedRequest:
    """Return the checked items of a request body; raise BadRequest (400 or 413) otherwise."""
    data = _decode_json(body)
    if not isinstance(data, dict):
        raise BadRequest(400, f"the body must be a JSON object such as "
                              f'{{"inputs": [{inputs.example()}]}}, not {_kind(data)}')
    unknown = sorted(set(data) - {"input", "inputs"})
    if unknown:
        raise BadRequest(400, f"unknown key '{unknown[0]}' in the body: send \"inputs\" (a list) "
                              "or \"input\" (one item)")
    if ("input" in data) == ("inputs" in data):
        raise BadRequest(400, f'the body needs either "inputs" (a list of items) or "input" '
                              f'(one item), e.g. {{"inputs": [{inputs.example()}]}}')
    if "input" in data:
        return ParsedRequest([check_item(data["input"], "input", inputs)], single=True)
    items = data["inputs"]
    if not isinstance(items, list):
        raise BadRequest(400, f'"inputs" must be a list of items, not {_kind(items)}')
    if not items:
        raise BadRequest(400, '"inputs" is empty: send at least one item')
    if len(items) > max_items:
        raise BadRequest(413, f'"inputs" holds {len(items)} items; this server takes at most '
                              f"{max_items} per request: split them over several requests")
    return ParsedRequest([check_item(item, f"inputs[{n}]", inputs)
                          for n, item in enumerate(items)], single=False)


def check_item(item: Any, where: str, inputs: TaskInputs) -> Any:
    """Return ``item`` if the task can read it; raise BadRequest naming ``where`` otherwise."""
    fields = inputs.fields
    if isinstance(item, str):
        if len(fields) != 1:
            raise BadRequest(400, f"{where} is a text, but the {inputs.task_title} task reads "
                                  f"{len(fields)} fields: send an object such as "
                                  f"{inputs.example()}")
        _check_text(item, where)
        return item
    if not isinstance(item, dict):
        raise BadRequest(400, f"{where} is {_kind(item)}; send a text or an object with "
                              f"{', '.join(fields)}")
    for name in item:
        if name not in fields and name not in inputs.optional_fields:
            raise BadRequest(400, f"{where} has the unknown field '{name}': the "
                                  f"{inputs.task_title} task reads "
                                  f"{', '.join((*fields, *inputs.optional_fields))}")
    for name in fields:
        if name not in item:
            raise BadRequest(400, f"{where} has no field '{name}': the {inputs.task_title} "
                                  f"task reads {', '.join(fields)}")
        if not isinstance(item[name], str):
            raise BadRequest(400, f"{where}.{name} is {_kind(item[name])}, not a text")
        _check_text(item[name], f"{where}.{name}")
    for name in inputs.optional_fields:
        if name in item:
            _check_texts(item[name], f"{where}.{name}")
    return item


def _check_text(text: str, where: str) -> None:
    index = lone_surrogate(text)
    if index is not None:
        raise BadRequest(400, f"{where}: {surrogate_message(text, index)}; write the character "
                              "itself, or both halves of its escape (🍕 is \\ud83c\\udf55)")


def _check_texts(value: Any, where: str) -> None:
    """Check an optional field that holds a list of texts (NER's given tokens)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(400, f"{where} must be a list of texts")
    for n, text in enumerate(value):
        _check_text(text, f"{where}[{n}]")


def _decode_json(body: bytes) -> Any:
    if not body.strip():
        raise BadRequest(400, "the body is empty: send a JSON object such as "
                              '{"inputs": ["a text"]}')
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest(400, f"the body is not UTF-8: byte 0x{body[error.start]:02x} at "
                              f"offset {error.start}; send JSON encoded as UTF-8") from None
    if text.startswith("\ufeff"):
        text = text[1:]  # a byte order mark some editors and Windows tools write
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadRequest(400, f"the body is not valid JSON: {error.msg} at line {error.lineno}, "
                              f"column {error.colno}") from None
    except RecursionError:  # the C parser checks its depth: no crash, only this error
        raise BadRequest(400, "the JSON is nested too deeply to read") from None


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a text", bool: "true or false",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)

