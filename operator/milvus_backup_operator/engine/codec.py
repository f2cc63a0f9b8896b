"""Go ``encoding/json`` semantics for milvus-backup's protobuf structs, on Python dataclasses.

milvus-backup marshals protoc-gen-go structs with ``encoding/json`` (not protojson), so:
keys are the proto field names in declaration order, every field is ``omitempty`` except a
few that are always emitted, enums are integers, 64-bit integers are plain JSON numbers and
keys are matched case-insensitively on read. Dataclass fields carry their JSON key and the
"always emitted" flag in their metadata; :func:`encode` and :func:`decode` do the rest.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar, Union

from .errors import MalformedMetaError

T = TypeVar("T")


def jfield(key: str, default: Any = None, *, always: bool = False, secret: bool = False) -> Any:
    """A dataclass field stored under JSON ``key``; lists and maps get fresh empty defaults.
    A ``secret`` one is left out of the dataclass's repr (and so of every log line)."""
    metadata = {"json": key, "always": always}
    if isinstance(default, list | dict):
        empty = type(default)
        return dataclasses.field(default_factory=empty, metadata=metadata, repr=not secret)
    return dataclasses.field(default=default, metadata=metadata, repr=not secret)


def encode(obj: Any) -> dict[str, Any]:
    """Turn a meta dataclass into the dict Go's ``encoding/json`` would produce."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not f.metadata.get("always") and _is_zero(value):
            continue
        out[f.metadata["json"]] = _encode_value(value)
    return out


def _encode_value(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return encode(value)
    if isinstance(value, list):
        return [_encode_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _encode_value(value[key]) for key in sorted(value)}
    return value


def _is_zero(value: Any) -> bool:
    if isinstance(value, list | dict):
        return not value
    return value is None or value in (0, "")


def decode(cls: type[T], data: Any, where: str) -> T:
    """Build ``cls`` from parsed JSON, matching keys case-insensitively like Go does.

    Unknown keys are ignored (newer milvus-backup versions add fields); wrong types raise
    :class:`MalformedMetaError` naming the file and the path of the offending value.
    """
    if not isinstance(data, dict):
        raise MalformedMetaError(f"{where}: expected a JSON object, got {_json_type(data)}")
    by_key = _fields_by_key(typing.cast(type, cls))
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        match = by_key.get(key.lower())
        if match is None or value is None:
            continue
        name, hint = match
        kwargs[name] = _decode_value(hint, value, f"{where}.{key}")
    return cls(**kwargs)


@cache
def _fields_by_key(cls: type) -> dict[str, tuple[str, Any]]:
    hints = typing.get_type_hints(cls)
    return {f.metadata["json"].lower(): (f.name, hints[f.name]) for f in dataclasses.fields(cls)}


def _decode_value(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _decode_value(inner, value, where)
    if origin is list:
        (item,) = typing.get_args(hint)
        _expect(isinstance(value, list), "an array", value, where)
        return [_decode_value(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(hint)
        _expect(isinstance(value, dict), "an object", value, where)
        return {k: _decode_value(item, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return decode(typing.cast(type, hint), value, where)
    check = _SCALARS[hint]
    _expect(check[0](value), check[1], value, where)
    return value


_SCALARS: dict[Any, tuple[Callable[[Any], bool], str]] = {
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    str: (lambda v: isinstance(v, str), "a string"),
    bool: (lambda v: isinstance(v, bool), "true or false"),
}


def _expect(ok: bool, expected: str, value: Any, where: str) -> None:
    if not ok:
        raise MalformedMetaError(f"{where}: expected {expected}, got {_json_type(value)}")


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names.update({list: "an array", dict: "an object", type(None): "null"})
    return names.get(type(value), type(value).__name__)
