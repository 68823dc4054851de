"""One codec between the client's typed values (frozen dataclasses) and the JSON the read
model stores: ``dump`` walks a value by its fields, ``load`` rebuilds it by its type hints.

A refresh that asks Stigg for part of a customer takes the rest from the last good
document; what it takes back must be exactly what Stigg said, so both directions come
from the same field list instead of two hand-kept mappings."""
from __future__ import annotations

import functools
import types
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from .readmodel import iso

T = TypeVar("T")


def dump(value: Any) -> Any:
    """A typed value as plain JSON: dataclasses as objects, datetimes as ISO strings,
    tuples as lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: dump(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, (list, tuple)):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    return value


def load(cls: type[T], data: Any) -> T:
    """The ``cls`` value ``dump`` turned into ``data``."""
    return _load(cls, data)  # type: ignore[no-any-return]


def load_all(cls: type[T], items: Any) -> list[T]:
    return [load(cls, item) for item in items]


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _load(tp: Any, data: Any) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        if data is None:
            return None
        options = [a for a in get_args(tp) if a is not type(None)]
        if len(options) != 1:
            raise TypeError(f"cannot load {tp}: only X | None unions are stored")
        return _load(options[0], data)
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_load(args[0], v) for v in data)
        return tuple(_load(a, v) for a, v in zip(args, data))
    if origin is list:
        return [_load(get_args(tp)[0], v) for v in data]
    if origin is dict:
        value_type = get_args(tp)[1]
        return {k: _load(value_type, v) for k, v in data.items()}
    if tp is datetime:
        return datetime.fromisoformat(data) if data is not None else None
    if isinstance(tp, type) and is_dataclass(tp):
        hints = _hints(tp)
        return tp(**{f.name: _load(hints[f.name], data[f.name]) for f in fields(tp) if f.name in data})
    return data
