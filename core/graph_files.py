"""List the files an ONNX graph makes onnxruntime open: its tensors' external data.

A graph file may keep any tensor's bytes in another file, named by a path relative to the
graph ("location" in the tensor's external_data). onnxruntime opens whatever is named, so a
bundle is only checked when every such file is one its manifest lists. Reading the locations
needs no onnx package (an inference-only install has none) and no weights: this walks the
protobuf wire format of the few messages that can hold a tensor, skipping everything else
(raw weight bytes included) by its length. Standard library only.

Field numbers are those of onnx.proto (ModelProto.graph = 7, TensorProto.external_data = 13...);
tests compare the result with the onnx package's own reading.
"""

from __future__ import annotations

from dataclasses import dataclass

# message kind -> {field number: message kind of that (length-delimited) field}
_MODEL, _TRAINING, _GRAPH, _FUNCTION, _NODE, _ATTRIBUTE, _SPARSE, _TENSOR, _ENTRY = range(9)
_CHILDREN = {
    _MODEL: {7: _GRAPH, 20: _TRAINING, 25: _FUNCTION},  # graph, training_info, functions
    _TRAINING: {1: _GRAPH, 2: _GRAPH},  # initialization, algorithm
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},  # node, initializer, sparse_initializer
    _FUNCTION: {7: _NODE, 11: _ATTRIBUTE},  # node, attribute_proto
    _NODE: {5: _ATTRIBUTE},
    # t, g, tensors, graphs, sparse_tensor, sparse_tensors
    _ATTRIBUTE: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},  # values, indices
    _TENSOR: {13: _ENTRY},  # external_data
}
_TENSOR_NAME = 8
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


class GraphFormatError(ValueError):
    """The bytes are not a readable ONNX protobuf."""


@dataclass(frozen=True)
class ExternalData:
    """One tensor whose bytes live in another file."""

    tensor: str
    location: str
    offset: int
    length: int | None  # None: to the end of the file


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise GraphFormatError("a number runs past the end of the data")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise GraphFormatError("a number is longer than 10 bytes")


def _fields(data: memoryview, start: int, end: int):
    """Yield (field number, wire type, value or start, end) for each field of one message."""
    position = start
    while position < end:
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, position = _varint(data, position)
            yield number, wire, value, position
        elif wire == _LENGTH:
            length, position = _varint(data, position)
            if position + length > end:
                raise GraphFormatError("a field runs past the end of its message")
            yield number, wire, position, position + length
            position += length
        elif wire == _FIXED64:
            position += 8
        elif wire == _FIXED32:
            position += 4
        else:  # groups (3, 4) are not used by onnx.proto; 6, 7 do not exist
            raise GraphFormatError(f"unknown wire type {wire}")
    if position != end:
        raise GraphFormatError("a field runs past the end of its message")


def _text(data: memoryview, start: int, end: int) -> str:
    return bytes(data[start:end]).decode("utf-8", errors="replace")


def _tensor(data: memoryview, start: int, end: int) -> ExternalData | None:
    name, entries = "", {}
    for number, wire, first, last in _fields(data, start, end):
        if wire != _LENGTH:
            continue
        if number == _TENSOR_NAME:
            name = _text(data, first, last)
        elif number == 13:
            key = value = ""
            for inner, inner_wire, a, b in _fields(data, first, last):
                if inner_wire == _LENGTH and inner == _ENTRY_KEY:
                    key = _text(data, a, b)
                elif inner_wire == _LENGTH and inner == _ENTRY_VALUE:
                    value = _text(data, a, b)
            entries[key] = value
    # A location alone counts, whatever data_location says: onnxruntime would follow it.
    if "location" not in entries:
        return None
    try:
        offset = int(entries.get("offset") or 0)
        length = int(entries["length"]) if entries.get("length") else None
    except ValueError:
        raise GraphFormatError(f"tensor '{name}' has an offset or length that is not a "
                               "number") from None
    return ExternalData(name, entries["location"], offset, length)


def external_data(graph: bytes) -> list[ExternalData]:
    """Return every tensor of a serialized ONNX model that keeps its bytes in another file.

    Raises GraphFormatError when the bytes are not a well-formed protobuf message.
    """
    data = memoryview(graph)
    found: list[ExternalData] = []
    stack = [(_MODEL, 0, len(data))]
    while stack:
        kind, start, end = stack.pop()
        if kind == _TENSOR:
            tensor = _tensor(data, start, end)
            if tensor is not None:
                found.append(tensor)
            continue
        children = _CHILDREN[kind]
        for number, wire, first, last in _fields(data, start, end):
            child = children.get(number)
            if child is not None and wire == _LENGTH:
                stack.append((child, first, last))
    return found
