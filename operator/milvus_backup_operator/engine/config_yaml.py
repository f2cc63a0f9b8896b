"""A configuration file's YAML, typed as milvus-backup's own loader types it, and bounded.

milvus-backup reads its file with gopkg.in/yaml.v3 into ``any`` (``internal/cfg/param/source.go``,
``NewSource``, the same in v0.5.16 and 0.6), and yaml.v3 types a plain scalar by its
``resolve.go``, not by YAML 1.1 as PyYAML does:

- only ``true``/``True``/``TRUE`` and ``false``/``False``/``FALSE`` are booleans: ``yes``,
  ``on``, ``y`` stay text;
- a date stays text (``decode.go`` hands a timestamp decoded into ``any`` back as its string);
- ``0755`` (octal 493), ``0x1F``, ``0b1``, ``0o7``, ``1_000``, ``08`` (a float) and ``.inf``
  are numbers. Go, YAML 1.1 and a reader's eye disagree on what several of these are, so
  such a value is a :class:`GoNumber`, which no key takes; decimal integers and plain floats
  are read as such.

PyYAML's resolvers and constructors are not used: the file is composed into nodes and typed
here. Refused before anything is built: a file over :data:`MAX_CONFIG_BYTES`, an alias
(``*name``: a few lines of them expand to gigabytes, the "billion laughs"), nesting deeper
than :data:`MAX_DEPTH`, more than :data:`MAX_NODES` keys and values, a key given twice, a
key that is not a plain name (``grpc.port``: milvus-backup would split it, we would not),
and a YAML tag other than ``!!str``. Messages name the file and line, never a value (it
may be a secret).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from .errors import InvalidRequestError

try:  # libyaml's parser, several times faster than PyYAML's own; both give the same events
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser as _PyParser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, _PyParser):  # type: ignore[no-redef]
        def __init__(self, text: str) -> None:
            Reader.__init__(self, text)
            Scanner.__init__(self)
            _PyParser.__init__(self)


#: the largest configuration file read (milvus-backup's own is under 10 KiB; 1 MiB parses in
#: well under a second)
MAX_CONFIG_BYTES = 1 << 20
#: the deepest nesting read (milvus-backup's deepest key, ``backup.storage.auth.type``, is 4)
MAX_DEPTH = 16
#: the most keys and values read (milvus-backup's own file has about 150): the cost of
#: composing a file is in its nodes, and a flow list of 1 MiB holds half a million
MAX_NODES = 10_000
#: the longest key read (milvus-backup's longest is 25 characters)
MAX_KEY = 100

_PLAIN = "?"  # the tag given to a plain scalar without a tag: typed by _plain()
_STR = BaseResolver.DEFAULT_SCALAR_TAG
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_SPECIAL_FLOATS = frozenset(
    sign + word for sign in ("", "+", "-") for word in (".inf", ".Inf", ".INF")
) | frozenset({".nan", ".NaN", ".NAN"})
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]{0,17})")
_YAML_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_GO_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|[0-9]+)")
_KEY = re.compile(rf"[^\x00-\x1f\x7f.]{{1,{MAX_KEY}}}")


@dataclass(frozen=True)
class GoNumber:
    """A plain scalar yaml.v3 reads as a number written in a form Go and Python may read
    differently (``0755``, ``0x1F``, ``1_000``, ``.inf``): refused by every key."""

    text: str = field(repr=False)


@dataclass(frozen=True)
class YamlFile:
    """The file's mapping, and the line of each dotted key (for messages)."""

    tree: dict[str, Any]
    lines: dict[str, int]


class _RefusedError(Exception):
    """Something the file holds that is not read: (what and what to do, its line or None)."""


def read_yaml(path: Path) -> YamlFile:
    """Read ``path``, at most :data:`MAX_CONFIG_BYTES` of it, as milvus-backup would."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise InvalidRequestError(f"cannot read config file {path}: {reason}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise InvalidRequestError(
            f"config file {path} is larger than {MAX_CONFIG_BYTES // 1024} KiB, the most read "
            "(milvus-backup's own is under 10 KiB): give the right file"
        )
    return _parse(text, path)


def _parse(text: str, path: Path) -> YamlFile:
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
        lines: dict[str, int] = {}
        tree = _value(root, "", lines) if root is not None else None
    except _RefusedError as exc:
        what, line = exc.args
        where = f"config file {path}, line {line}:" if line else f"config file {path}"
        raise InvalidRequestError(f"{where} {what}") from None
    except yaml.MarkedYAMLError as exc:
        raise InvalidRequestError(f"config file {path} is not valid YAML {_where(exc)}") from None
    except yaml.YAMLError:
        raise InvalidRequestError(f"config file {path} is not valid YAML") from None
    if tree is None:  # an empty file, or only null (which milvus-backup's flattenAny drops)
        return YamlFile({}, {})
    if not isinstance(tree, dict):
        raise InvalidRequestError(f"config file {path} must hold a mapping at the top level")
    return YamlFile(tree, lines)


def _where(exc: yaml.MarkedYAMLError) -> str:
    """``at line L, column C (problem)``, with anything quoted from the file left out."""
    mark = exc.problem_mark or exc.context_mark
    where = f"at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = re.sub(r"(['\"]).*?\1", "...", exc.problem or "")
    return f"{where} ({problem}): fix the syntax there" if problem else f"{where}: fix it"


class _Loader(Composer, _Parser, BaseResolver):
    """Events to nodes, refusing aliases and deep nesting before they are composed."""

    def __init__(self, text: str) -> None:
        _Parser.__init__(self, text)
        Composer.__init__(self)
        BaseResolver.__init__(self)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        line = event.start_mark.line + 1 if event and event.start_mark else 0
        if isinstance(event, AliasEvent):
            raise _RefusedError(
                "a YAML alias (*name) is not read, as aliases can expand a few lines into "
                "gigabytes: write the value out",
                line,
            )
        self._nodes += 1
        if self._nodes > MAX_NODES:
            what = f"more than {MAX_NODES} keys and values: give the right file"
            raise _RefusedError(what, line)
        if self._depth >= MAX_DEPTH:
            raise _RefusedError(
                f"nested more than {MAX_DEPTH} levels deep: fix the indentation", line
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        """A plain scalar keeps the mark :data:`_PLAIN` (:func:`_plain` types it); the rest
        the default tags, as no implicit resolver is registered here."""
        if kind is ScalarNode:
            return _PLAIN if implicit[0] else _STR
        if kind is SequenceNode:
            return BaseResolver.DEFAULT_SEQUENCE_TAG
        return BaseResolver.DEFAULT_MAPPING_TAG


def _value(node: Node, prefix: str, lines: dict[str, int]) -> Any:
    """The node as plain data; ``lines`` gets the line of every key under ``prefix``."""
    line = node.start_mark.line + 1
    if isinstance(node, MappingNode) and node.tag == BaseResolver.DEFAULT_MAPPING_TAG:
        return _mapping(node, prefix, lines)
    if isinstance(node, SequenceNode) and node.tag == BaseResolver.DEFAULT_SEQUENCE_TAG:
        return [_value(item, prefix, {}) for item in node.value]
    if isinstance(node, ScalarNode) and node.tag == _STR:
        return node.value
    if isinstance(node, ScalarNode) and node.tag == _PLAIN:
        return _plain(node.value)
    where = prefix.rstrip(".") or "the top level"
    raise _RefusedError(f"{where}: a YAML tag (!...) other than !!str is not read: remove it", line)


def _mapping(node: MappingNode, prefix: str, lines: dict[str, int]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        key = key_node.value if isinstance(key_node, ScalarNode) else None
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise _RefusedError(
                f"a key under {prefix.rstrip('.') or 'the top level'} is not a name (text of "
                f"at most {MAX_KEY} characters, without '.' or control characters): write each "
                "section on its own (grpc:, then port: under it)",
                line,
            )
        dotted = f"{prefix}{key}"
        if dotted in lines:
            raise _RefusedError(
                f"gives {dotted} twice (lines {lines[dotted]} and {line}): keep one (YAML "
                "would silently take the last)",
                None,
            )
        lines[dotted] = line
        tree[key] = _value(value_node, dotted + ".", lines)
    return tree


def _plain(text: str) -> Any:
    """A plain scalar as yaml.v3's ``resolve.go`` types it; a number Go and Python may read
    differently is a :class:`GoNumber`, a float too large for Go's ParseFloat stays text."""
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if text in _SPECIAL_FLOATS:
        return GoNumber(text)
    if text[:1] not in set("+-.0123456789"):
        return text
    if _DECIMAL.fullmatch(text):
        return int(text)
    if _YAML_FLOAT.fullmatch(text):
        number = float(text)
        return number if math.isfinite(number) else text
    plain = text.replace("_", "")
    if text[0] != "." and (_GO_INT.fullmatch(plain) or _YAML_FLOAT.fullmatch(plain)):
        return GoNumber(text)
    return text
