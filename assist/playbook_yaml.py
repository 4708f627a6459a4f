"""Playbook YAML changed in place: the fields a form edits are replaced, and the comments, key order and
quoting around them stay as the supervisor wrote them (ruamel.yaml's round trip)."""

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString

from assist.playbooks import PlaybookError


def _round_trip() -> YAML:
    """A round-trip YAML in the shipped playbooks' layout (lists two spaces under their key, no folding)."""
    handler = YAML()
    handler.preserve_quotes = True
    handler.width = 4096
    handler.indent(mapping=2, sequence=4, offset=2)
    return handler


def load(text: str) -> CommentedMap:
    """The document of text, with its comments.

    Raises:
        PlaybookError: the text is not YAML or not a mapping.
    """
    try:
        document = _round_trip().load(text)
    except YAMLError as exc:
        raise PlaybookError(f"not valid YAML: {exc}") from None
    if not isinstance(document, CommentedMap):
        raise PlaybookError("a playbook is a mapping of fields (id, name, when, route, ...)")
    return document


def dump(document: CommentedMap) -> str:
    out = io.StringIO()
    _round_trip().dump(document, out)
    return out.getvalue()


def replaced(text: str, **fields: Any) -> str:
    """text with top-level fields set; a dict value updates that mapping's keys (route={"queue": ...}).

    Raises:
        PlaybookError: the text is not YAML or not a mapping.
    """
    document = load(text)
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(document.get(key), CommentedMap):
            for inner, inner_value in value.items():
                _set(document[key], inner, inner_value)
        else:
            _set(document, key, value)
    return dump(document)


def _set(mapping: CommentedMap, key: str, value: Any) -> None:
    """Set mapping[key], keeping what did not change as it was written (quotes, comments); an empty list
    leaves the field out (every list of a playbook is optional, or required and reported by validation)."""
    old = mapping.get(key)
    if value == []:
        mapping.pop(key, None)
    elif old == value:
        return
    elif isinstance(value, list) and isinstance(old, CommentedSeq):
        kept = {item: item for item in old if isinstance(item, str)}
        old[:] = [kept.get(item, _block(item)) for item in value]
    else:
        mapping[key] = _block(value)


def _block(value: Any) -> Any:
    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value if value.endswith("\n") else value + "\n")
    if isinstance(value, list):
        return [_block(item) for item in value]
    return value
