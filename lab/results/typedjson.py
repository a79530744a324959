"""JSON read into frozen dataclasses and written back from them, field by field from their type hints.

`read` refuses what does not fit, naming the field that held it ("locust.p95_ms is 'abc', expected a
number"). A key missing from the JSON takes its field's default, and is refused without one; a key no
field names is passed over (what a later writer added). `write` gives the JSON of a dataclass.

The types it knows: None, bool, int, float (an integer is a float too), str, Literal, Enum (by its
value), X | None, list[X], tuple[X, ...], dict[str, X], object (any JSON value, as it is), dataclasses,
and a union of dataclasses told apart by a `kind` class variable (written as the object's "kind").
A field marked `flat()` keeps its fields in its holder's own object, as a record keeps its knobs.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")
FLAT = "typedjson.flat"
NAMES: dict[object, str] = {type(None): "null", bool: "true or false", int: "an integer", float: "a number", str: "a string"}


class JsonError(ValueError):
    """JSON that does not fit its type: the message names the field, what it held and what was expected."""


@dataclasses.dataclass(frozen=True)
class Flat:
    """How a flat field reads itself from its holder's object, and writes its keys into it."""

    read: Callable[[Mapping[str, object], str], object] | None = None
    write: Callable[[Any], dict[str, object]] | None = None


def flat(
    read: Callable[[Mapping[str, object], str], object] | None = None, write: Callable[[Any], dict[str, object]] | None = None
) -> dict[str, Flat]:
    """A field's metadata: its value's keys stand in its holder's object. Without `read` and `write`,
    its dataclass's own fields are read and written there (None when its first field is null or absent)."""
    return {FLAT: Flat(read, write)}


def read(cls: type[T], data: object, field: str = "") -> T:
    """`data` (parsed JSON) as `cls`; JsonError names the field, below `field`, that does not fit."""
    return typing.cast(T, _read(cls, data, field))


def write(value: object) -> object:
    """The JSON value of `value` (a dataclass, a container of them, or a JSON value)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return write(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _write_dataclass(value)
    if isinstance(value, list | tuple):
        return [write(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): write(item) for key, item in value.items()}
    raise TypeError(f"typedjson cannot write {type(value).__name__}")


def fail(field: str, data: object, expected: str) -> JsonError:
    shown = repr(data)
    return JsonError(f"{field or 'the JSON'} is {shown if len(shown) <= 60 else shown[:57] + '...'}, expected {expected}")


def _read(tp: object, data: object, field: str) -> object:
    origin = get_origin(tp)
    if tp is object:
        return data
    if tp is type(None):
        if data is not None:
            raise fail(field, data, "null")
        return None
    if origin in (Union, types.UnionType):
        return _read_union(get_args(tp), data, field)
    if origin is Literal:
        choices = get_args(tp)
        if data not in choices or isinstance(data, bool) != any(isinstance(c, bool) for c in choices):
            raise fail(field, data, "one of " + ", ".join(map(repr, choices)))
        return data
    if origin in (list, tuple):
        return _read_sequence(tp, origin, data, field)
    if origin is dict:
        key_type, value_type = get_args(tp)
        if key_type is not str or not isinstance(data, dict):
            raise fail(field, data, "an object")
        return {key: _read(value_type, value, f"{field}.{key}") for key, value in data.items()}
    if isinstance(tp, type):
        return _read_type(tp, data, field)
    raise TypeError(f"typedjson cannot read {tp!r}")


def _read_type(tp: type, data: object, field: str) -> object:
    if tp is bool or tp is str:
        if not isinstance(data, tp):
            raise fail(field, data, NAMES[tp])
        return data
    if tp is int or tp is float:
        if isinstance(data, bool) or not isinstance(data, int | float) or (tp is int and not isinstance(data, int)):
            raise fail(field, data, NAMES[tp])
        return tp(data)
    if issubclass(tp, enum.Enum):
        try:
            return tp(data)
        except ValueError:
            raise fail(field, data, "one of " + ", ".join(repr(m.value) for m in tp)) from None
    if dataclasses.is_dataclass(tp):
        return _read_dataclass(tp, data, field)
    raise TypeError(f"typedjson cannot read {tp!r}")


def _read_union(args: tuple[object, ...], data: object, field: str) -> object:
    if data is None and type(None) in args:
        return None
    rest = [arg for arg in args if arg is not type(None)]
    if len(rest) == 1:
        return _read(rest[0], data, field)
    if type(data) in rest:  # a plain value of one of the types: int | float keeps an int an int
        return data
    kinds = {_kind(arg): arg for arg in rest}
    if None in kinds:
        for arg in rest:
            try:
                return _read(arg, data, field)
            except JsonError:
                pass
        raise fail(field, data, " or ".join(NAMES.get(arg, repr(arg)) for arg in args))
    if not isinstance(data, dict):
        raise fail(field, data, "an object")
    kind = data.get("kind")
    if kind not in kinds:
        raise fail(f"{field}.kind", kind, "one of " + ", ".join(map(repr, kinds)))
    return _read(kinds[kind], data, field)


def _read_sequence(tp: object, origin: object, data: object, field: str) -> object:
    args = get_args(tp)
    if origin is tuple and (len(args) != 2 or args[1] is not Ellipsis):
        raise TypeError(f"typedjson reads tuples of one type only (tuple[X, ...]), not {tp!r}")
    if not isinstance(data, list):
        raise fail(field, data, "a list")
    items = [_read(args[0], item, f"{field}[{i}]") for i, item in enumerate(data)]
    return items if origin is list else tuple(items)


def _read_dataclass(cls: type, data: object, field: str) -> object:
    if not isinstance(data, dict):
        raise fail(field, data, "an object")
    values: dict[str, object] = {}
    for f, hint in _fields(cls):
        here = f"{field}.{f.name}" if field else f.name
        how = f.metadata.get(FLAT)
        if how is not None:
            values[f.name] = _read_flat(how, hint, data, field)
        elif f.name in data:
            values[f.name] = _read(hint, data[f.name], here)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise JsonError(f"{here} is missing")
    return cls(**values)


def _read_flat(how: Flat, hint: object, data: dict[str, object], field: str) -> object:
    if how.read is not None:
        return how.read(data, field)
    args = get_args(hint)
    cls = next(arg for arg in args if arg is not type(None)) if args else hint
    if not isinstance(cls, type):
        raise TypeError(f"typedjson reads a flat dataclass, not {hint!r}")
    if type(None) in args and data.get(_fields(cls)[0][0].name) is None:
        return None
    return _read(cls, data, field)


def _write_dataclass(value: object) -> dict[str, object]:
    cls: type = type(value)
    out: dict[str, object] = {}
    kind = _kind(cls)
    if kind is not None:
        out["kind"] = kind
    for f, hint in _fields(cls):
        item = getattr(value, f.name)
        how = f.metadata.get(FLAT)
        if how is None:
            out[f.name] = write(item)
        elif how.write is not None:
            out.update(how.write(item))
        elif item is None:
            cls = next(arg for arg in get_args(hint) if arg is not type(None))
            out.update({inner.name: None for inner, _ in _fields(cls)})
        else:
            out.update(_write_dataclass(item))
    return out


@cache
def _fields(cls: type) -> list[tuple[dataclasses.Field[object], object]]:
    """A dataclass's fields read from JSON, each with its type hint resolved."""
    hints = get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if f.init]


def _kind(cls: object) -> str | None:
    """The `kind` class variable of a dataclass in a union, or None."""
    kind = getattr(cls, "kind", None) if dataclasses.is_dataclass(cls) else None
    return kind if isinstance(kind, str) else None
